"""Build, once, the virtual environment with Home Assistant in which the tests validate
hikd's MQTT discovery configs with Home Assistant's own schemas
(tests/sinks/mqtt/test_ha_schemas.py).

Home Assistant needs a newer Python than hikd's 3.11 (2024.4 and later need 3.12,
2025.2 and later 3.13): the newest interpreter found (on PATH, or installed by pyenv) is
used, and pip picks the newest Home Assistant release that installs on it. Only PyPI is
needed. The environment is kept in ``$HIKD_HA_VENV`` (default
``~/.cache/hikd/ha-venv``) and reused until deleted; a failed build leaves nothing there.

    python tools/ha_venv.py   # build if missing; print where it is (`make ha-venv`)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

PYTHONS = ("3.14", "3.13", "3.12", "3.11")
READY = "hikd-ready"
"""Written into the environment last: its presence says the build finished."""


def venv_dir() -> Path:
    configured = os.environ.get("HIKD_HA_VENV")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hikd" / "ha-venv"


def candidates() -> list[str]:
    found: list[str] = []
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for version in PYTHONS:
        on_path = shutil.which(f"python{version}")
        if on_path:
            found.append(on_path)
        found.extend(str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"))[::-1])
    return found


def works(python: str) -> bool:
    try:
        subprocess.run(
            [python, "-c", "import venv, ensurepip"], check=True, capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def build(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second one waits, then reuses
        return _build(target)


def _build(target: Path) -> Path:
    if (target / READY).is_file():
        return target
    building = target.with_name(target.name + ".building")
    for python in candidates():
        if not works(python):
            continue
        shutil.rmtree(building, ignore_errors=True)
        print(f"building {target} with {python}", flush=True)
        try:
            subprocess.run([python, "-m", "venv", str(building)], check=True)
            pip = [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            subprocess.run([*pip, "--upgrade", "pip"], check=True)
            subprocess.run([*pip, "homeassistant"], check=True)
            subprocess.run(
                [str(building / "bin" / "python"), "-c", "import homeassistant.components.mqtt"],
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as error:
            print(f"{python}: {error}", flush=True)
            continue
        # Only bin/python is used (its scripts' shebangs keep the old path after the
        # rename; the interpreter finds its packages next to itself).
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
        (target / READY).write_text(python + "\n")
        return target
    shutil.rmtree(building, ignore_errors=True)
    raise SystemExit("no Python on this machine could install Home Assistant")


def main() -> None:
    target = venv_dir()
    print(build(target))


if __name__ == "__main__":
    main()
