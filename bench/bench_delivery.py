"""Delivery benchmark (issue 11): simulator -> hikd -> outbox -> MQTT -> subscriber.

    .venv/bin/python bench/bench_delivery.py [--devices 32] [--rate 1000] [--seconds 5]
        [--rates 2000,2500,3000,3500,4000,5000] [--step-seconds 3] [--no-pyhik] [--hops]
        [--only-hikd] [--subscriber raw|paho] [--sim-tree DIR]

Every part in its own process: hikd.sim (32 devices), `hikd run` (real vendor library,
disk + MQTT sinks), mosquitto, and the MQTT subscriber (a thread of this process: MQTT
3.1.1 on a plain socket, `mqtt_subscriber.py`; `--subscriber paho` for the earlier one).
Latency is the subscriber's `time.monotonic_ns()` at receipt minus the `hikd_sim_sent_ns`
the simulator wrote into the alarm (CLOCK_MONOTONIC is system-wide on Linux).

`[alarms.hold_s] default = 0`: every alarm the simulator sends is a new start (and its
stop follows), so an alarm is two hikd events and the comparison is hikd-produced events
(read back from its disk sink) against events the subscriber received.

Prints, from one run:
1. latency p50/p99 and hikd's CPU per alarm at `--rate`, summed over all its processes
   (supervisor and device hosts; targets: p50 <= 1 ms, p99 <= 5 ms, CPU <= 150 us per
   alarm), the CPU of each of the bench's own parts (simulator, mosquitto, subscriber, this
   process) and of the rest of the machine over the same window (`budget.py`), next to
   references on the same simulator: a plain Python socket reader of the alertStreams
   (Basic auth, parts split by Content-Length), the vendor library alone with a copy-only
   callback, and pyHik from PyPI (installed into the venv here when it is installable);
2. the rate stepped up: per step loss, backlog at the end ("behind"), latency and every
   part's share of the machine, and the highest rate delivered without falling behind
   (target >= 4,000 alarms/s; what "kept up" means is printed with the table).
`--hops` also prints where the alarms of the first step waited, hop by hop (`hops.py`);
`--only-hikd` leaves the references out; `--sim-tree` runs another checkout's simulator
(to compare load generators on the same hikd). Asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budget import CORES, PARTS, Meter, Window, own_cpu_s, part_readers
from common import PASSWORD, ROOT, pct, start_simulator, tree_cpu_s
from hops import Arrival, hop_table, print_hops
from mqtt_subscriber import SUBSCRIBERS, PahoSubscriber, RawSubscriber

Subscriber = RawSubscriber | PahoSubscriber

TYPES = "VMD,linedetection,fielddetection,tamperdetection"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DRAIN_IDLE_S = 10.0
"""A step ends when nothing more arrives for this long (or everything has)."""
KEPT_UP_S = 1.0
"""A step kept up when its last event reached the subscriber within this long after the
simulator sent its last alarm (and none was lost): at most this much backlog at the end."""
BUSY_OTHERS_PERCENT = 20
"""A step during which the machine's other users took more than this (% of one core) is
marked: its latency and verdict say more about the machine than about hikd."""
PACE_SLACK_S = 0.25
"""A step whose simulator took longer than its seconds plus this to send was held back by
the machine, not by hikd (marked in the output)."""
SENT_NS = re.compile(rb"<hikdSimSentNs>(\d+)</hikdSimSentNs>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """utime + stime of a process and its children (`hikd run`'s device hosts), all
    threads."""
    return tree_cpu_s(pid)


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the parts in their own processes ---------------------------------------------------
def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        # The default (1000 queued per client, then drop) would count the broker's own
        # drops as hikd's loss when the subscriber falls behind at the highest rates.
        "max_queued_messages 0",
    ]
    if os.geteuid() == 0:
        lines.append(f"user {getpass.getuser()}")
    config = workdir / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit("mosquitto did not start (apt-get install mosquitto)")


def scenario(port: int, rate: int, devices: int, seconds: float) -> dict[str, Any]:
    """Run a paced load on the simulator (blocks until done): what `hikd sim scenario`
    does, its POST made here (no interpreter started per step). Returns its result
    (`sent`, `elapsed_s`, ...)."""
    body = {"rate": rate, "devices": devices, "types": TYPES, "duration": seconds}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds + 60)
    try:
        conn.request("POST", "/hikd-sim/scenario", json.dumps(body).encode())
        response = conn.getresponse()
        result = json.loads(response.read())
    finally:
        conn.close()
    if response.status != 200:
        raise SystemExit(f"the simulator refused the scenario: {result}")
    return dict(result)


def start_hikd(
    workdir: Path, ports: list[int], broker_port: int, hops: Path | None
) -> subprocess.Popen[bytes]:
    state = workdir / "state"
    lines = [
        "[daemon]", f'state_dir = "{state}"',
        "[logging]", 'level = "warning"', 'format = "json"',
        "[alarms.hold_s]", "default = 0",
        "[sinks.disk]", f'path = "{state / "events"}"', "max_bytes = 4000000000",
        "[sinks.mqtt]", 'host = "127.0.0.1"', f"port = {broker_port}",
        'client_id = "hikd-bench"', "discovery = false",
    ]  # fmt: skip
    for i, port in enumerate(ports):
        lines += ["[[devices]]", f'name = "cam{i:02d}"', 'host = "127.0.0.1"', f"port = {port}",
                  f'password = "{PASSWORD}"']  # fmt: skip
    config = workdir / "hikd.toml"
    config.write_text("\n".join(lines) + "\n")
    log = open(workdir / "hikd.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "hikd", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "HIKD_HOPS": str(hops)} if hops else None,
    )


# -- what arrives: the subscriber, and hikd's disk sink ---------------------------------
class DiskReader:
    """New complete lines of hikd's disk sink since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_lines(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].splitlines()


def event_id(line: bytes) -> bytes:
    # Event.to_json() writes the id first: {"id":"<36 chars>",...
    return line[7:43]


def is_alarm_start(line: bytes) -> bool:
    return b'"kind":"alarm"' in line[:120] and b'"state":"start"' in line[:200]


@dataclass
class Step:
    rate: int
    seconds: float
    sent: int = 0
    sending_s: float = 0.0
    """How long the simulator took to send them (`seconds` when it kept its pace)."""
    starts: int = 0
    produced: int = 0
    received: int = 0
    missing: int = 0
    missing_ids: set[bytes] = field(default_factory=set)
    arrived_later: int = 0
    """Of the missing, how many reached the subscriber before the run's end (a stall of
    more than DRAIN_IDLE_S, not a loss)."""
    drain_s: float = 0.0
    """From the end of the load to the last event arriving (0: it kept up)."""
    supervisor_cpu_s: float = 0.0
    """hikd's supervisor (delivery) alone; the rest is the device hosts'."""
    window: Window = field(default_factory=lambda: Window(0.0, dict.fromkeys(PARTS, 0.0), 0.0))
    """CPU of hikd and of each of the bench's parts, and the machine's, from the load's
    start until the step stopped waiting (all arrived, or DRAIN_IDLE_S without progress)."""
    latencies_ms: list[float] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    subscriber_error: str = ""

    @property
    def cpu_s(self) -> float:
        """hikd's, over all its processes."""
        return self.window.parts["hikd"]

    @property
    def window_s(self) -> float:
        return self.seconds + self.drain_s

    @property
    def delivered_per_s(self) -> float:
        """Events through to the subscriber per second over the load and its drain."""
        return self.received / self.window_s

    @property
    def paced(self) -> bool:
        """The simulator sent every planned alarm on time (else the machine held the load
        generator back, and the step says little about hikd)."""
        on_time = self.sending_s <= self.seconds + PACE_SLACK_S
        return self.sent == int(self.rate * self.seconds) and on_time

    @property
    def zero_loss(self) -> bool:
        planned = int(self.rate * self.seconds)
        return self.sent == planned and self.starts == self.sent and self.missing == 0

    @property
    def kept_up(self) -> bool:
        """Zero loss, and delivered within KEPT_UP_S of the load's end (no backlog)."""
        return self.zero_loss and self.drain_s <= KEPT_UP_S

    def per_alarm_us(self, cpu_s: float) -> float:
        return cpu_s / max(1, self.sent) * 1e6


def run_step(
    rate: int,
    seconds: float,
    ports: list[int],
    hikd: subprocess.Popen[bytes],
    sub: Subscriber,
    disk: DiskReader,
    seen: set[bytes],
    readers: dict[str, Callable[[], float]],
) -> Step:
    """One paced load; then wait until every event hikd wrote to disk has reached the
    subscriber, or nothing has moved for DRAIN_IDLE_S."""
    step = Step(rate, seconds)
    disk.new_lines()  # skip what came before
    first = len(sub.received)
    produced: set[bytes] = set()
    own0 = own_cpu_s(hikd.pid)
    meter = Meter(readers)
    result = scenario(ports[0], rate, len(ports), seconds)
    step.sent, step.sending_s = int(result["sent"]), float(result["elapsed_s"])
    ended = time.monotonic()
    checked = first
    last_progress = time.monotonic()
    while True:
        lines = disk.new_lines()
        produced.update(event_id(line) for line in lines)
        step.starts += sum(1 for line in lines if is_alarm_start(line))
        upto = len(sub.received)
        seen.update(event_id(p) for _, p in sub.received[checked:upto])
        if lines or upto > checked:
            last_progress = time.monotonic()
        checked = upto
        missing = produced - seen
        if not missing and step.starts >= step.sent:
            break
        if time.monotonic() - last_progress > DRAIN_IDLE_S:
            break
        time.sleep(0.1)
    step.window = meter.stop()
    step.subscriber_error = sub.error
    step.drain_s = max(0.0, last_progress - ended)
    step.supervisor_cpu_s = own_cpu_s(hikd.pid) - own0
    step.produced, step.missing, step.missing_ids = len(produced), len(missing), missing
    step.received = len(produced) - len(missing)
    for now, payload in sub.received[first:checked]:
        if b'"state":"start"' not in payload[:200]:
            continue
        event = json.loads(payload)
        sent_ns = event["attributes"].get("hikd_sim_sent_ns")
        if event["kind"] == "alarm" and sent_ns:
            step.latencies_ms.append((now - int(sent_ns)) / 1e6)
            step.arrivals.append(Arrival(event["id"], now, int(sent_ns), event["received"]))
    return step


def wait_for_missing(steps: list[Step], sub: Subscriber, seen: set[bytes]) -> None:
    """Give the events the steps found missing one more DRAIN_IDLE_S to arrive (after the
    last step), and note per step how many did."""
    missing = set().union(*(s.missing_ids for s in steps)) - seen
    deadline = time.monotonic() + DRAIN_IDLE_S
    while missing and time.monotonic() < deadline:
        time.sleep(0.5)
        missing -= {event_id(p) for _, p in sub.received[-200_000:]}
    for s in steps:
        s.arrived_later = len(s.missing_ids - missing)


def run_hikd_part(
    args: argparse.Namespace, ports: list[int], work: Path, sim_pid: int
) -> dict[str, Any]:
    broker, broker_port = start_broker(work)
    hikd: subprocess.Popen[bytes] | None = None
    sub: Subscriber | None = None
    try:
        sub = SUBSCRIBERS[args.subscriber](broker_port)
        hops = work / "hops" if args.hops else None
        if hops:
            hops.mkdir()
        hikd = start_hikd(work, ports, broker_port, hops)
        deadline = time.monotonic() + 60
        while sum(1 for _, p in list(sub.received) if b'"type":"armed"' in p) < len(ports):
            if time.monotonic() > deadline or hikd.poll() is not None:
                raise SystemExit(f"hikd did not arm every device:\n{read_tail(work / 'hikd.log')}")
            time.sleep(0.1)
        time.sleep(1.0)  # let the start-up burst (online, armed, discovery) settle
        idle0, t0 = cpu_s(hikd.pid), time.monotonic()
        time.sleep(2.0)
        idle_per_s = (cpu_s(hikd.pid) - idle0) / (time.monotonic() - t0)
        disk = DiskReader(work / "state" / "events" / "events.jsonl")
        seen: set[bytes] = set()
        subscriber = sub
        readers = part_readers(hikd.pid, sim_pid, broker.pid, lambda: subscriber.native_id)
        main = run_step(args.rate, args.seconds, ports, hikd, sub, disk, seen, readers)
        steps = [
            run_step(rate, args.step_seconds, ports, hikd, sub, disk, seen, readers)
            for rate in args.rates
        ]
        wait_for_missing([main, *steps], sub, seen)
        result: dict[str, Any] = {"main": main, "steps": steps, "idle_cpu_per_s": idle_per_s}
    finally:
        if hikd is not None:
            stop(hikd)
        if sub is not None:
            sub.close()
        stop(broker)
    if hops and hikd is not None:  # written as hikd's processes exited
        offset = time.time_ns() - time.monotonic_ns()
        result["hops"] = hop_table(main.arrivals, hops, offset, hikd.pid)
    return result


def read_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


# -- references: a plain socket reader, and pyHik ---------------------------------------
def reference(part: str, ports: list[int], rate: int, seconds: float) -> dict[str, Any]:
    """Run a reference reader in its own process on the same simulator: it connects, says
    ready, the scenario runs, then it is told how many alarms to expect and reports."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--part", part, "--ports", ",".join(map(str, ports))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(proc.stderr.read()[-2000:] if proc.stderr else "no output")
        sent = int(scenario(ports[0], rate, len(ports), seconds)["sent"])
        proc.stdin.write(f"{sent}\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        result["sent"] = sent
        return dict(result)
    finally:
        proc.kill()
        proc.wait()


def wait_for_target(arrived: list[tuple[int, int]], quiet_s: float) -> None:
    """Read the expected count from stdin; wait until it has arrived, or nothing more has
    for `quiet_s`."""
    target = int(sys.stdin.readline())
    last, last_change = len(arrived), time.monotonic()
    while len(arrived) < target and time.monotonic() - last_change < quiet_s:
        time.sleep(0.05)
        if len(arrived) != last:
            last, last_change = len(arrived), time.monotonic()


def report(arrived: list[tuple[int, int]], cpu: float) -> None:
    latencies = [(now - sent) / 1e6 for now, sent in arrived]
    print(json.dumps({"count": len(arrived), "cpu_s": cpu, "latencies_ms": latencies}))
    sys.stdout.flush()
    os._exit(0)  # reader threads may be blocked in recv; nothing to clean up


def socket_reader(ports: list[int]) -> None:
    """The floor: GET each alertStream with preemptive Basic auth, split the multipart
    stream into parts by Content-Length, take hikdSimSentNs out of each alarm."""
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    arrived: list[tuple[int, int]] = []
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    for port in ports:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            f"GET /ISAPI/Event/notification/alertStream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Basic {auth}\r\nConnection: keep-alive\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"alertStream on {port}: {head[:60]!r}")
        buffers[sock] = bytearray(head.partition(b"\r\n\r\n")[2])
        selector.register(sock, selectors.EVENT_READ)

    def read_loop() -> None:
        while True:
            for key, _ in selector.select():
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                data = sock.recv(65536)
                now = time.monotonic_ns()
                buf = buffers[sock]
                buf += data
                while True:
                    headers_end = buf.find(b"\r\n\r\n")
                    if headers_end < 0:
                        break
                    length_at = buf.find(b"Content-Length: ", 0, headers_end)
                    if length_at < 0:  # the boundary line before the first part
                        del buf[: headers_end + 4]
                        continue
                    line_end = buf.find(b"\r\n", length_at)
                    length = int(buf[length_at + 16 : line_end])
                    body_end = headers_end + 4 + length
                    if len(buf) < body_end:
                        break
                    match = SENT_NS.search(buf, headers_end, body_end)
                    # The heartbeat (videoloss/inactive every 10 s) is no alarm.
                    if match and buf.find(b"<eventType>videoloss", headers_end, body_end) < 0:
                        arrived.append((now, int(match.group(1))))
                    del buf[:body_end]

    threading.Thread(target=read_loop, daemon=True).start()
    cpu0 = sum(os.times()[:2])
    print("ready", flush=True)
    wait_for_target(arrived, quiet_s=5.0)
    report(arrived, sum(os.times()[:2]) - cpu0)


def bare_library(ports: list[int]) -> None:
    """The vendor library alone, arming every device with a callback that only copies the
    alert out (what hikd's own callback does): the floor of any daemon built on it."""
    from hikd.sdk.ffi import ffi
    from hikd.sdk.library import Library

    sdk = Library.open()
    arrived: list[tuple[int, int]] = []

    def on_message(command: int, alarmer: Any, info: Any, length: int, user: Any) -> None:
        now = time.monotonic_ns()
        data = ffi.cast("NET_DVR_ALARM_ISAPI_INFO *", info)
        body = ffi.buffer(data.pAlarmData, data.dwAlarmDataLen)[:]
        match = SENT_NS.search(body)
        if match and b"<eventType>videoloss" not in body:
            arrived.append((now, int(match.group(1))))

    signature = "void(int, NET_DVR_ALARMER *, char *, unsigned int, void *)"
    callback = ffi.callback(signature, on_message)
    sdk.lib.NET_DVR_SetDVRMessageCallBack_V30(callback, ffi.NULL)
    for port in ports:
        info = ffi.new("NET_DVR_USER_LOGIN_INFO *")
        info.sDeviceAddress, info.wPort = b"127.0.0.1", port
        info.sUserName, info.sPassword, info.byLoginMode = b"admin", PASSWORD.encode(), 1
        user = sdk.lib.NET_DVR_Login_V40(info, ffi.new("NET_DVR_DEVICEINFO_V40 *"))
        param = ffi.new("NET_DVR_SETUPALARM_PARAM *")
        param.dwSize = ffi.sizeof(param[0])
        if sdk.lib.NET_DVR_SetupAlarmChan_V41(user, param) < 0:
            raise SystemExit(f"the bare library could not arm the device on port {port}")
    time.sleep(1.0)
    cpu0 = sum(os.times()[:2])
    print("ready", flush=True)
    wait_for_target(arrived, quiet_s=5.0)
    report(arrived, sum(os.times()[:2]) - cpu0)


def pyhik_reader(ports: list[int]) -> None:
    """pyHik's own stream reader (one thread per camera), timed where it hands a parsed
    alert to its state machine (`HikCamera.process_stream`)."""
    from pyhik.hikvision import HikCamera  # type: ignore[import-untyped]

    arrived: list[tuple[int, int]] = []
    original = HikCamera.process_stream

    def timed(self: HikCamera, tree: Any) -> None:
        now = time.monotonic_ns()
        for element in tree.iter():
            if element.tag.endswith("eventType") and element.text == "videoloss":
                break  # the heartbeat, no alarm
            if element.tag.endswith("hikdSimSentNs"):
                arrived.append((now, int(element.text)))
                break
        original(self, tree)

    HikCamera.process_stream = timed
    cameras = [HikCamera("http://127.0.0.1", port, "admin", PASSWORD) for port in ports]
    for camera in cameras:
        camera.start_stream()
    deadline = time.monotonic() + 30
    while not all(c.stream_connected for c in cameras) and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu0 = sum(os.times()[:2])
    print("ready", flush=True)
    # pyHik holds the last alarm of each stream until more bytes come (the simulator's
    # heartbeat, every 10 s): wait a little longer for those.
    wait_for_target(arrived, quiet_s=12.0)
    report(arrived, sum(os.times()[:2]) - cpu0)


def pyhik_available() -> str | None:
    """None when pyHik can be imported (installing it from PyPI if needed), else why not."""
    check = [sys.executable, "-c", "import pyhik.hikvision"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return None
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "pyhik"],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        lines = (install.stderr or install.stdout or "import failed").strip().splitlines()
        return f"cannot be installed: {lines[-1] if lines else 'unknown error'}"
    return None


def pyhik_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyhik")
    except PackageNotFoundError:
        return "?"


# -- main -----------------------------------------------------------------------------
def ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"  # NaN when nothing was measured


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and a == a and b == b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="2000,2500,3000,3500,4000,5000")
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument("--no-pyhik", action="store_true", help="skip the pyHik reference")
    parser.add_argument("--hops", action="store_true", help="print the latency hop by hop")
    parser.add_argument("--only-hikd", action="store_true", help="skip the references")
    parser.add_argument(
        "--subscriber", choices=sorted(SUBSCRIBERS), default="raw",
        help="raw: MQTT 3.1.1 on a plain socket (default); paho: the bench's earlier one",
    )  # fmt: skip
    parser.add_argument(
        "--sim-tree", type=Path, help="run the simulator of another checkout of hikd"
    )
    parser.add_argument("--part", choices=["socket", "bare", "pyhik"], help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        ports = [int(p) for p in args.ports.split(",")]
        {"socket": socket_reader, "bare": bare_library, "pyhik": pyhik_reader}[args.part](ports)
        return
    args.rates = [int(r) for r in args.rates.split(",") if r]

    pyhik_problem = "skipped (--no-pyhik)" if args.no_pyhik else pyhik_available()
    sim, ports = start_simulator(args.devices, args.sim_tree)
    refs: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="hikd-bench-") as tmp:
            ours = run_hikd_part(args, ports, Path(tmp), sim.pid)
        if args.only_hikd:
            pyhik_problem = "skipped (--only-hikd)"
        else:
            refs["socket"] = reference("socket", ports, args.rate, args.seconds)
            refs["bare"] = reference("bare", ports, args.rate, args.seconds)
        if pyhik_problem is None:
            try:
                refs["pyhik"] = reference("pyhik", ports, args.rate, args.seconds)
            except (RuntimeError, ValueError) as error:
                pyhik_problem = f"did not run: {str(error).strip().splitlines()[-1:]}"
    finally:
        sim.send_signal(signal.SIGTERM)
        stop(sim)

    main_step: Step = ours["main"]
    h50, h99 = pct(main_step.latencies_ms, 0.5), pct(main_step.latencies_ms, 0.99)
    h_cpu = main_step.cpu_s / max(1, main_step.sent) * 1e6
    idle = ours["idle_cpu_per_s"]
    print(
        f"Delivery: {args.devices} devices, {args.rate} alarms/s for {args.seconds:g} s "
        f"(types {TYPES}); hikd.sim, `hikd run` (real library), mosquitto and the subscriber "
        f"each in their own process on {os.cpu_count()} cores"
    )
    print(f"{'':36} {'alarms':>7} {'received':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/alarm':>13}")
    print(
        f"{'hikd: sim -> outbox -> MQTT sub':36} {main_step.sent:>7} "
        f"{len(main_step.latencies_ms):>9} {ms(h50):>7} {ms(h99):>7} {h_cpu:>13.1f}"
    )
    rows = {
        "socket": "socket reader of the alertStream",
        "bare": "vendor library, copy-only callback",
        "pyhik": f"pyHik {pyhik_version()}",
    }
    for key, label in rows.items():
        ref = refs.get(key)
        if ref is None:
            print(f"{label:36} {pyhik_problem}")
            continue
        lat = ref["latencies_ms"]
        cpu = ref["cpu_s"] / max(1, ref["sent"]) * 1e6
        print(
            f"{label:36} {ref['sent']:>7} {ref['count']:>9} {ms(pct(lat, 0.5)):>7} "
            f"{ms(pct(lat, 0.99)):>7} {cpu:>13.1f}"
        )
        ref.update(p50=pct(lat, 0.5), p99=pct(lat, 0.99), cpu_us=cpu)
    idle_us = idle * main_step.window_s / max(1, main_step.sent) * 1e6
    print(
        f"  hikd: {main_step.produced} events for {main_step.sent} alarms (start + stop each), "
        f"{main_step.missing} missing at the subscriber, {main_step.drain_s:.1f} s behind at "
        f"the end; {main_step.cpu_s / max(1, main_step.produced) * 1e6:.0f} us per event, of "
        f"which idle load {idle_us:.0f} us/alarm"
    )
    sup = main_step.per_alarm_us(main_step.supervisor_cpu_s)
    print(
        f"  hikd's CPU per alarm over all its processes: {h_cpu:.0f} us = supervisor "
        f"(delivery) {sup:.0f} + device hosts {h_cpu - sup:.0f}"
    )
    print_budget(main_step, args.subscriber)
    print("  targets: p50 <= 1 ms, p99 <= 5 ms, CPU <= 150 us per alarm")
    for key, label in (("socket", "socket reader"), ("bare", "bare library"), ("pyhik", "pyHik")):
        ref = refs.get(key)
        if ref is not None:
            print(
                f"  hikd / {label}: p50 {ratio(h50, ref['p50'])}, p99 {ratio(h99, ref['p99'])}, "
                f"CPU per alarm {ratio(h_cpu, ref['cpu_us'])}"
            )

    if "hops" in ours:
        print_hops(ours["hops"], len(main_step.arrivals))
    print_steps(ours["steps"], args.step_seconds)


BUDGET_LABELS = {
    "hikd": "hikd",
    "simulator": "simulator",
    "broker": "mosquitto",
    "subscriber": "subscriber",
    "bench": "bench parent",
}


def print_budget(step: Step, subscriber: str) -> None:
    """Each part's CPU per alarm and share of the machine over the step."""
    w = step.window
    print(
        f"  CPU of each part over the same {w.seconds:.1f} s (us per alarm, % of one core; "
        f"the machine has {CORES * 100} %; subscriber: {subscriber}):"
    )
    parts = ", ".join(
        f"{BUDGET_LABELS[name]} {step.per_alarm_us(cpu):.0f} us ({w.percent(cpu):.0f} %)"
        for name, cpu in w.parts.items()
    )
    bench = sum(cpu for name, cpu in w.parts.items() if name != "hikd")
    print(f"    {parts}")
    print(
        f"    the bench's own parts together {step.per_alarm_us(bench):.0f} us "
        f"({w.percent(bench):.0f} %); anything else on the machine {w.percent(w.others):.0f} %; "
        f"idle {w.percent(w.idle):.0f} %"
    )
    if w.percent(w.others) > BUSY_OTHERS_PERCENT:
        print(
            f"    the machine was busy with other work (over {BUSY_OTHERS_PERCENT} % of a "
            f"core): the latency here says more about the machine than about hikd"
        )


def print_steps(steps: list[Step], seconds: float) -> None:
    print(
        f"\nStepping the rate up ({seconds:g} s of load each). A step KEPT UP when the "
        f"simulator sent every planned alarm, hikd wrote a start and a stop for each (its disk "
        f"sink), every one of those events reached the MQTT subscriber (missing = on disk, "
        f"not received when nothing had moved for {DRAIN_IDLE_S:g} s), and the last arrived "
        f"at most {KEPT_UP_S:g} s after the simulator sent its last alarm (behind = that "
        f"time; more means a backlog built up: hikd fell behind). 'sim slow' = the simulator "
        f"itself needed more than {PACE_SLACK_S:g} s over the step's time to send (the "
        f"machine, not hikd, held the load back); 'machine busy' = anything but hikd and the "
        f"bench took more than {BUSY_OTHERS_PERCENT} % of a core. CPU in % of one core over "
        f"the step and its drain "
        f"(the machine has {CORES * 100} %):"
    )
    print(
        f"{'rate/s':>7} {'sent':>7} {'send s':>7} {'missing':>8} {'behind s':>9} "
        f"{'ev/s out':>9} {'p50 ms':>8} {'p99 ms':>8} {'us/alarm':>9} {'hikd':>5} {'sim':>5} "
        f"{'mosq':>5} {'sub':>5} {'bench':>5} {'other':>5} {'idle':>5}  verdict"
    )
    best = kept = 0
    first_behind: int | None = None
    for s in steps:
        w = s.window
        shares = [w.percent(w.parts[name]) for name in PARTS] + [
            w.percent(w.others),
            w.percent(w.idle),
        ]
        planned = int(s.rate * s.seconds)
        if s.kept_up:
            verdict = "kept up"
        elif s.sent < planned:
            verdict = f"the simulator sent {s.sent} of {planned}"
        elif not s.zero_loss:
            verdict = f"MISSING {s.missing + max(0, s.sent - s.starts)}"
            if s.missing and s.arrived_later:
                verdict += f" ({s.arrived_later} arrived later: a stall, not a loss)"
        else:
            verdict = "fell behind"
        if not s.paced:
            verdict += ", sim slow"
        if w.percent(w.others) > BUSY_OTHERS_PERCENT:
            verdict += ", machine busy"
        if s.subscriber_error:
            verdict += f" ({s.subscriber_error})"
        print(
            f"{s.rate:>7} {s.sent:>7} {s.sending_s:>7.2f} {s.missing:>8} {s.drain_s:>9.1f} "
            f"{s.delivered_per_s:>9.0f} {ms(pct(s.latencies_ms, 0.5)):>8} "
            f"{ms(pct(s.latencies_ms, 0.99)):>8} {s.per_alarm_us(s.cpu_s):>9.0f} "
            + " ".join(f"{v:>5.0f}" for v in shares)
            + f"  {verdict}"
        )
        best = max(best, s.rate) if s.zero_loss else best
        kept = max(kept, s.rate) if s.kept_up else kept
        if not s.kept_up and first_behind is None:
            first_behind = s.rate
    print(
        f"  highest zero-loss rate: {best} alarms/s; highest rate delivered without falling "
        f"behind: {kept or 'none of the steps'} (target >= 4,000)"
        + (f"; the first step that did not keep up: {first_behind}" if first_behind else "")
    )


if __name__ == "__main__":
    main()
