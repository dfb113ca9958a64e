"""The one table of alarm types (hikd/event_types.py) against what the decoders can emit.

The emittable names are read from the decoders' own tables (every ISAPI alias, every
dwAlarmType, VCA rule and VQD finding, every device-log entry), so a name a decoder starts
emitting without a row fails here, and so does a row whose one-shot-ness disagrees with
the decoder's."""

from __future__ import annotations

import pytest

from hikd.event_types import EVENT_TYPES, ONE_SHOT, UNKNOWN, event_type
from hikd.listeners import log_alarms
from hikd.listeners.decode import types as decoded

HA_BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window",
}  # fmt: skip
"""Home Assistant's binary sensor device classes (homeassistant.components.binary_sensor)."""

HA_EVENT_CLASSES = {"button", "doorbell", "motion"}
"""Home Assistant's event entity device classes (homeassistant.components.event)."""


def emittable() -> set[str]:
    names = set(decoded.ISAPI_ALIASES.values())
    names |= set(decoded.ALARM_TYPES.values())
    names |= set(decoded.VCA_RULE_TYPES.values())
    names |= set(decoded.VCA_EVENT_BITS.values())
    names |= set(decoded.VQD_EVENTS.values())
    names |= {type_ for type_, _edge in log_alarms.LOG_ALARMS.values()}
    names.discard(decoded.HEARTBEAT)  # counted, never emitted
    return names | {decoded.UNKNOWN}


def test_every_type_a_decoder_can_emit_has_a_row() -> None:
    missing = sorted(emittable() - set(EVENT_TYPES))
    assert not missing, f"add rows to hikd/event_types.py for {missing}"


def test_no_row_for_a_name_nothing_emits() -> None:
    """A row nothing emits is a name that does not meet (region_exiting, record_error)."""
    assert sorted(set(EVENT_TYPES) - emittable()) == []


def test_one_shot_types_are_the_decoders_pulses() -> None:
    """The binary decoder's one-shot codes are one-shot types of the table (the ISAPI
    decoder reads the table itself)."""
    by_code = {decoded.ALARM_TYPES[code] for code in decoded.ALARM_TYPES_ONE_SHOT}
    assert by_code <= ONE_SHOT
    assert ONE_SHOT - {UNKNOWN} == decoded.ONE_SHOT_TYPES


@pytest.mark.parametrize("row", list(EVENT_TYPES.values()), ids=lambda r: r.name)
def test_each_row_is_one_home_assistant_knows(row: object) -> None:
    from hikd.event_types import EventType

    assert isinstance(row, EventType)
    assert row.label[:1].isupper() and "_" not in row.label
    if row.one_shot:
        assert row.component == "event"
        assert row.device_class in HA_EVENT_CLASSES | {None}
    else:
        assert row.component == "binary_sensor"
        assert row.device_class in HA_BINARY_SENSOR_CLASSES
    assert row.where in ("channel", "input", "output", "disk", "device")


def test_the_names_that_did_not_meet() -> None:
    """The decoder's names, each with the class and severity its old misspelt twin had."""
    assert event_type("region_exit").device_class == "motion"
    assert event_type("smoke").device_class == "smoke"
    assert event_type("fire").severity == "crit"
    assert event_type("recording_failure").severity == "err"
    assert event_type("bad_video").device_class == "problem"
    assert event_type("vehicle").one_shot
    assert event_type("io").where == "input"
    assert event_type("disk_full").where == "disk"


def test_a_name_without_a_row_reads_as_its_words() -> None:
    row = event_type("new_fancy_thing")
    assert (row.label, row.where, row.device_class, row.one_shot) == (
        "New fancy thing",
        "channel",
        None,
        False,
    )
