"""HTTP/RTSP Digest authentication on the device side (RFC 2069, and RFC 2617 qop=auth).

The vendor library answers the RTSP server's challenge with RFC 2069 Digest and the plain
password (sdk-over-isapi.md part 2 b); HTTP clients other than the library (browsers,
scripts, the peers in bench/bench_download.py) use Digest on ISAPI URLs, as devices
accept it next to session cookies.
"""

from __future__ import annotations

import hashlib
import secrets


def digest_params(authorization: str) -> dict[str, str] | None:
    """The fields of an ``Authorization: Digest ...`` header, or None for another scheme."""
    if not authorization.lower().startswith("digest "):
        return None
    params: dict[str, str] = {}
    for part in _split_params(authorization[7:]):
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return params


def digest_user(
    authorization: str, method: str, users: dict[str, str], realm: str, nonce: str
) -> str | None:
    """The user an Authorization header proves to be, or None."""
    params = digest_params(authorization)
    if params is None or params.get("nonce") != nonce:
        return None
    username = params.get("username", "")
    password = users.get(username)
    if password is None:
        return None

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        expected = md5(
            f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}"
        )
    else:
        expected = md5(f"{ha1}:{nonce}:{ha2}")
    return username if secrets.compare_digest(expected, params.get("response", "")) else None


def challenge(realm: str, nonce: str, qop: bool) -> str:
    """The value of a ``WWW-Authenticate`` header asking for Digest."""
    extra = ', qop="auth"' if qop else ""
    return f'Digest realm="{realm}", nonce="{nonce}"{extra}'


def _split_params(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]
