"""The control socket outlives a connection it cannot take (a real socket, in a process of
its own: the test lowers that process's file limit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import resource, socket, sys, time
    from pathlib import Path
    import structlog
    from hikd.cli.status import ask
    from hikd.observe.control import ControlServer

    path = Path(sys.argv[1])
    server = ControlServer(path, lambda request: {"ok": True})
    logs = []

    def keep(logger, method, event):
        logs.append(event["event"])
        raise structlog.DropEvent

    structlog.configure(processors=[keep])
    assert server.start()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # few to use up
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    spare = []
    while True:  # use up every descriptor: the server's accept() finds none (EMFILE)
        try:
            spare.append(open("/dev/null"))
        except OSError:
            break
    client.connect(str(path))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server._thread.is_alive():  # until it tried
        if any("cannot accept" in line for line in logs):
            break
        time.sleep(0.01)
    for f in spare:
        f.close()
    client.settimeout(10)
    client.sendall(b'{"get": "status"}\\n')
    print(client.recv(100).decode().strip(), flush=True)
    print(ask(path, {"get": "status"}), flush=True)
    server.stop()
    """
)


def test_the_control_socket_answers_after_running_out_of_file_descriptors(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "hikd.sock")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['{"ok": true}', "{'ok': True}"], done.stderr
