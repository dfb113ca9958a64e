"""`hikd sim trigger|scenario|status`: drive a running simulator through `/hikd-sim/`.

hikd sim trigger --port P --type VMD --channel 2 --state active [--pictures 1] [--json]
hikd sim scenario --port P --rate 1000 --devices 32 --types VMD,linedetection --duration 10
hikd sim status --port P
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
from typing import Any

from hikd.errors import UserError


def _connect(args: argparse.Namespace, timeout: float) -> http.client.HTTPConnection:
    if args.https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the simulator's certificate is self-signed
        return http.client.HTTPSConnection(args.host, args.port, timeout=timeout, context=context)
    return http.client.HTTPConnection(args.host, args.port, timeout=timeout)


def call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None, timeout: float
) -> dict[str, Any]:
    """One request to a running simulator; a clear UserError when it is not there."""
    conn = _connect(args, timeout)
    where = f"{args.host}:{args.port}"
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read()
    except ConnectionRefusedError:
        raise UserError(
            f"no simulator listening on {where}: start one with `hikd sim --port {args.port}`"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise UserError(f"cannot talk to the simulator on {where}: {exc}") from None
    finally:
        conn.close()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UserError(f"{where} is not a hikd simulator (HTTP {resp.status} to {path})")
    if resp.status != 200:
        raise UserError(f"the simulator refused: {data.get('error', resp.status)}")
    return data


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="port of a simulated device")
    p.add_argument("--https", action="store_true", help="the device serves HTTPS")


def trigger_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="hikd sim trigger", description="Send one alarm.")
    _common(p)
    p.add_argument("--type", default="VMD", help="eventType: VMD, IO, linedetection, ...")
    p.add_argument("--channel", type=int, default=1)
    p.add_argument("--state", choices=["active", "inactive"], default="active")
    p.add_argument("--pictures", type=int, default=0)
    p.add_argument("--json", action="store_true", help="send the JSON form, not XML")
    p.add_argument("--region", type=int, default=1, help="regionID of smart events")
    p.add_argument("--target", default="human", help="detectionTarget of smart events")
    p.add_argument("--no-push", action="store_true", help="alert streams only, no POSTs")
    args = p.parse_args(argv)
    body = {
        "type": args.type,
        "channel": args.channel,
        "state": args.state,
        "pictures": args.pictures,
        "fmt": "json" if args.json else "xml",
        "region_id": args.region,
        "target": args.target,
        "push": not args.no_push,
    }
    result = call(args, "POST", "/hikd-sim/trigger", body, timeout=10)
    print(
        f"sent {args.type} seq {result['seq']} to {result['streams']} alert stream(s), "
        f"{result['pushes']} push target(s)"
    )
    return 0


def scenario_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="hikd sim scenario",
        description="Send a paced load of alarms over the devices of a running simulator.",
    )
    _common(p)
    p.add_argument("--rate", type=float, default=100, help="alarms per second, in total")
    p.add_argument("--devices", type=int, default=None, help="use the first N devices")
    p.add_argument("--types", default="VMD", help="comma-separated event types")
    p.add_argument("--duration", type=float, default=10, help="seconds")
    p.add_argument("--pictures", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--push-to", metavar="HOST:PORT", help="POST every alarm there instead")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        raise UserError("--rate and --duration must be positive")
    body: dict[str, Any] = {
        "rate": args.rate,
        "devices": args.devices,
        "types": args.types,
        "duration": args.duration,
        "pictures": args.pictures,
        "fmt": "json" if args.json else "xml",
    }
    if args.push_to:
        host, _, port = args.push_to.rpartition(":")
        if not host or not port.isdigit():
            raise UserError("--push-to must be HOST:PORT")
        body["push_to"] = {"host": host, "port": int(port)}
    result = call(args, "POST", "/hikd-sim/scenario", body, timeout=args.duration + 60)
    print(json.dumps(result, indent=2))
    return 0


def status_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="hikd sim status", description="Show the devices' state.")
    _common(p)
    args = p.parse_args(argv)
    print(json.dumps(call(args, "GET", "/hikd-sim/devices", None, timeout=10), indent=2))
    return 0
