"""Why a TLS connection to the broker failed, in one line that says what to change."""

from __future__ import annotations

import ssl

from hikd.sinks.mqtt.config import MqttConfig


def tls_problem(error: BaseException | None, where: str, config: MqttConfig) -> str | None:
    """The problem to report for `error` (raised while connecting), or None when it is not
    a TLS failure."""
    if config.tls and isinstance(error, ConnectionResetError):
        # A broker's port without TLS resets the connection at the first bytes of the
        # handshake (mosquitto 2: measured, at once); refused would be "not running".
        return (
            f"the MQTT broker at {where} reset the connection in the TLS handshake; check "
            "that this port speaks TLS (mqtt port, tls)"
        )
    if not isinstance(error, ssl.SSLError):
        return None
    trusted = f"mqtt.ca_file ({config.ca_file})" if config.ca_file else "the system's CAs"
    if isinstance(error, ssl.SSLCertVerificationError):
        why = error.verify_message or error.reason or str(error)
        if "hostname" in why.lower() or "ip address mismatch" in why.lower():
            return (
                f"the MQTT broker at {where} has a TLS certificate that is not for "
                f"{config.host!r} ({why}); set mqtt host to a name in its certificate, "
                "or tls_insecure = true"
            )
        return (
            f"the MQTT broker at {where} has a TLS certificate that {trusted} does not "
            f"vouch for ({why}); set mqtt.ca_file to the CA that signed the broker's "
            "certificate"
        )
    return (
        f"the TLS handshake with the MQTT broker at {where} failed "
        f"({error.reason or error}); check that this port speaks TLS (mqtt port, tls) and "
        "mqtt cert_file and key_file"
    )
