"""``hikd demo``: the simulated NVR and the daemon together, with readable output.

The simulator plays a small NVR on 127.0.0.1; the daemon logs in to it with the real vendor
library, arms it and prints alarms and health as they happen. MQTT output is on when a
broker answers on the configured address, and the demo says which.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hikd.cli.output import Subcommands, config_arg

if TYPE_CHECKING:
    from hikd.config import Config
    from hikd.events import Event
    from hikd.sim import Simulator

DEFAULT_CONFIG = Path("config/demo.toml")
# The simulator's password, handed to the daemon through the environment like a real one.
# It guards nothing: the simulator listens on loopback only.
DEMO_PASSWORD = "demo-Passw0rd"

# What the simulated NVR does, over and over: (event type, channel, state, pictures, pause s)
SCRIPT: tuple[tuple[str, int, Literal["active", "inactive"], int, float], ...] = (
    ("VMD", 1, "active", 0, 1.0),
    ("VMD", 1, "active", 0, 1.0),
    ("VMD", 1, "active", 0, 2.0),
    ("linedetection", 2, "active", 1, 2.0),
    ("IO", 1, "active", 0, 2.0),
    ("IO", 1, "inactive", 0, 2.0),
    ("fielddetection", 3, "active", 1, 2.0),
    ("tamperdetection", 4, "active", 0, 4.0),
)

_COLOURS = {"start": "\033[31m", "stop": "\033[32m", "pulse": "\033[33m"}


def add_parser(sub: Subcommands) -> None:
    p = sub.add_parser("demo", help="run the simulator and the daemon together")
    config_arg(p)
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = never)"
    )
    p.set_defaults(handler=lambda args: demo(args.config, args.duration))


def describe(event: Event) -> str:
    when = datetime.now().strftime("%H:%M:%S")
    where = f"ch {event.channel}" if event.channel is not None else "-"
    state = event.state.upper()
    if sys.stdout.isatty():
        state = f"{_COLOURS.get(event.state, '')}{state}\033[0m"
    details = ""
    if event.kind == "health":
        keys = ("serial", "ip_channels", "protocol", "reason", "handle")
        details = " ".join(f"{k}={event.attributes[k]}" for k in keys if k in event.attributes)
    if event.state == "stop" and "duration_s" in event.attributes:
        details += f"after {float(event.attributes['duration_s']):.0f} s"
        if event.attributes.get("ended_by") == "hold_timeout":
            details += " (no news from the device)"
    if event.kind == "file":
        details += " ".join(str(f) for f in event.files)
    elif event.files:
        details += f" pictures={len(event.files)}"
    return (
        f"{when}  {event.kind:<6} {event.device.name:<10} {where:<6} "
        f"{event.type:<22} {state:<5} {details}"
    )


def broker_reachable(config: Config) -> tuple[bool, str]:
    section: dict[str, Any] = config.sinks.get("mqtt", {})
    host, port = str(section.get("host", "127.0.0.1")), int(section.get("port", 1883))
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True, f"{host}:{port}"
    except OSError:
        return False, f"{host}:{port}"


def watch_mqtt(host: str, port: int) -> Any:
    """Print what a home-automation system would see on the broker (hikd/#)."""
    import json

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    def on_message(_client: Any, _userdata: Any, message: Any) -> None:
        payload = bytes(message.payload)
        if message.topic.endswith("/events"):
            try:
                event = json.loads(payload)
                text = f"{event['kind']} {event['type']} {event['state']}"
            except (ValueError, KeyError):
                text = f"{len(payload)} bytes"
        elif "/health" in message.topic:
            try:
                text = str(json.loads(payload)["state"])
            except (ValueError, KeyError, TypeError):
                text = f"{len(payload)} bytes"
        elif len(payload) > 60:
            text = f"{len(payload)} bytes of JSON"
        else:
            text = payload.decode("utf-8", "replace")
        retained = " (retained)" if message.retain else ""
        print(f"{datetime.now():%H:%M:%S}  mqtt   {message.topic} = {text}{retained}", flush=True)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hikd-demo-watcher")
    client.on_message = on_message
    client.on_connect = lambda c, *_args: c.subscribe("hikd/#")
    client.connect(host, port)
    client.loop_start()
    return client


def drive(sim: Simulator, stop: threading.Event) -> None:
    device = sim.devices[0]
    for event_type, channel, state, pictures, pause in itertools.cycle(SCRIPT):
        if stop.wait(pause):
            return
        try:
            device.trigger(type=event_type, channel=channel, state=state, pictures=pictures)
        except Exception as exc:  # the demo goes on; the daemon is what is shown
            print(f"simulator: {exc}", file=sys.stderr)


def demo(config_path: Path | None, duration: float = 0.0) -> int:
    from hikd.config import load_config
    from hikd.daemon import Daemon
    from hikd.logs import setup_logging
    from hikd.native_stderr import route_native_stderr
    from hikd.sim import SimDeviceConfig, Simulator
    from hikd.sim.config import RecordingPlan

    os.environ.setdefault("HIKD_PASSWORD_DEMO_NVR", DEMO_PASSWORD)
    config = load_config(config_path or DEFAULT_CONFIG)
    # The demo's own lines show what happens; logs only when something goes wrong.
    setup_logging("warning", "console")
    route_native_stderr()
    device = config.devices[0]
    password = device.password.get_secret_value() if device.password else DEMO_PASSWORD

    watcher = None
    if "mqtt" in config.sinks:
        reachable, where = broker_reachable(config)
        if reachable:
            print(f"MQTT: publishing to the broker on {where} (topic prefix hikd/)")
            host, _, port = where.rpartition(":")
            watcher = watch_mqtt(host, int(port))
        else:
            print(f"MQTT: no broker on {where}, so MQTT output is off (start mosquitto to see it)")
            config = config.model_copy(
                update={"sinks": {k: v for k, v in config.sinks.items() if k != "mqtt"}}
            )

    sim = Simulator(
        [
            SimDeviceConfig(
                name=device.name,
                port=device.port,
                username=device.username,
                password=password,
                device_type="NVR",
                ip_channels=4,
                alarm_inputs=2,
                # Three finished 2-minute recordings per channel for the download job.
                recordings=RecordingPlan(per_channel=3, segment_s=120, bytes_per_second=20_000),
            )
        ]
    )
    sim.start()
    print(f"simulated NVR {device.name!r} on 127.0.0.1:{sim.devices[0].port}")
    daemon = Daemon(config, observers=[lambda event: print(describe(event), flush=True)])
    stop_driving = threading.Event()
    driver = threading.Thread(target=drive, args=(sim, stop_driving), daemon=True)
    try:
        daemon.start()
        driver.start()
        if duration > 0:
            threading.Timer(duration, daemon.stopping.set).start()
        daemon.run_forever()
    finally:
        stop_driving.set()
        daemon.stop()
        sim.stop()
        if watcher is not None:
            watcher.loop_stop()
            watcher.disconnect()
    return 0
