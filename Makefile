# The two commands of the README: `make demo` and `make test`. Each does all set-up itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck unit bench mosquitto ffmpeg seccomp openssl gcc shim ha-venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[sdk,dev]'
	touch $(STAMP)

# The vendor library's alarm callback in C (README "The alarm callback"): built beside its
# source, never committed; without it hikd runs the callback in Python.
SHIM := hikd/sdk/native/libhikd_alarms.so
SHIM_SOURCE := hikd/sdk/native/alarm_shim.c

# gcc from Debian's packages, only when it is missing.
gcc:
	@command -v gcc >/dev/null 2>&1 || { \
	  echo "installing gcc from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null; }

shim: $(SHIM)

$(SHIM): $(SHIM_SOURCE) | gcc
	gcc -O2 -std=c11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -pthread \
	  -o $@.$$$$ $< && mv $@.$$$$ $@

# mosquitto from Debian's packages, only when it is missing.
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || { \
	  echo "installing mosquitto from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends mosquitto >/dev/null; }

# ffprobe counts the frames of downloaded recordings (tests/video.py): ffmpeg from Debian's
# packages, only when it is missing.
ffmpeg:
	@command -v ffprobe >/dev/null 2>&1 || { \
	  echo "installing ffmpeg from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }

# The MQTT TLS tests make their certificates with openssl (tests/certificates.py): Debian's
# package, only when it is missing.
openssl:
	@command -v openssl >/dev/null 2>&1 || { \
	  echo "installing openssl from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends openssl >/dev/null; }

# The systemd unit's test applies its seccomp rules with libseccomp (tests/unit_sandbox.py):
# Debian's python3-seccomp for the system interpreter, and systemd-analyze for the groups.
seccomp:
	@{ /usr/bin/python3 -c 'import seccomp' 2>/dev/null && command -v systemd-analyze >/dev/null; } || { \
	  echo "installing python3-seccomp and systemd-analyze from Debian's packages"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    python3-seccomp systemd >/dev/null; }

# Home Assistant in a virtual environment of its own (it needs a newer Python than hikd),
# for tests/sinks/mqtt/test_ha_schemas.py; cached in ~/.cache/hikd/ha-venv. Built on request
# only: a build in the background of `unit` would load the machine the tests time (they skip,
# saying so, until it is there).
ha-venv: $(STAMP)
	$(BIN)/python tools/ha_venv.py

# The demo builds the C callback where gcc is there, and runs the Python one where it is not.
demo: $(STAMP)
	@if command -v gcc >/dev/null 2>&1; then $(MAKE) --no-print-directory shim; fi
	$(BIN)/hikd demo --config config/demo.toml

lint: $(STAMP)
	$(BIN)/ruff check hikd tests bench tools
	$(BIN)/ruff format --check hikd

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) shim mosquitto ffmpeg seccomp openssl
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP) shim mosquitto ffmpeg
	$(BIN)/python -m pip install --quiet -e '.[sdk,dev,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache $(SHIM)
