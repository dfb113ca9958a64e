"""Run by the interpreter of a virtual environment with Home Assistant installed (not
hikd's): validates MQTT discovery configs with Home Assistant's own schemas.

Reads a JSON list of ``{"topic": ..., "payload": {...}}`` on stdin and prints a JSON
object: Home Assistant's version, and per config the error Home Assistant's discovery
would log (None when it is valid) and the keys its schema dropped as unknown.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import tempfile
from typing import Any

import voluptuous as vol
from homeassistant.components.mqtt.schemas import MQTT_ORIGIN_INFO_SCHEMA
from homeassistant.const import __version__
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame


def check(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    component = topic.split("/")[-3]
    try:
        module = importlib.import_module(f"homeassistant.components.mqtt.{component}")
        if "origin" in payload:
            MQTT_ORIGIN_INFO_SCHEMA(payload["origin"])
        valid = module.DISCOVERY_SCHEMA(dict(payload))
    except (vol.Invalid, ImportError, AttributeError) as error:
        return {"topic": topic, "error": f"{type(error).__name__}: {error}", "dropped": []}
    dropped = sorted(set(payload) - set(valid))
    device = payload.get("device") or {}
    dropped += sorted(f"device.{k}" for k in set(device) - set(valid.get("device") or {}))
    return {"topic": topic, "error": None, "dropped": dropped}


async def validate(configs: list[dict[str, Any]], config_dir: str) -> list[dict[str, Any]]:
    # Templates are validated against a running Home Assistant, in its event loop, as
    # its MQTT discovery does.
    hass = HomeAssistant(config_dir)
    frame.async_setup(hass)
    try:
        return [check(c["topic"], c["payload"]) for c in configs]
    finally:
        await hass.async_stop(force=True)


def main() -> None:
    configs = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as config_dir:
        results = asyncio.run(validate(configs, config_dir))
    json.dump({"version": __version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
