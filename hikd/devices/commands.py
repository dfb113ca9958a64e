"""Commands carried out on a device's session, by the route that works on its protocol.

* alarm output on/off: ISAPI sessions ``PUT /ISAPI/System/IO/outputs/<id>/trigger`` with
  ``IOPortData/outputState`` ``high``/``low`` (pass-through); private-protocol sessions
  ``NET_DVR_SetAlarmOut`` (seed 5.19.29), its port counted from 0;
* snapshot: `snapshot`, the snapshot jobs' capture (pass-through ``GET .../picture`` on
  ISAPI, ``CaptureJPEGPicture_NEW`` on the private protocol);
* detection on/off: read the detection's document, set its own ``<enabled>``, put it back
  (pass-through on both protocols, where the device answers ISAPI).

A detection document is edited in place, never rebuilt: real devices keep fields hikd does
not know (regions, schedules, ``dynVideoInputID``) and answer 400 to a document without
them (peers.md, 2026-12 update). The commands come checked (`hikd.commands.Command.problem`);
here they are checked against the device itself: its outputs, channels and session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hikd.commands import DETECTION, OUTPUT, SNAPSHOT, Command, CommandResult
from hikd.devices.capabilities.snapshot import snapshot, snapshot_event, write_picture
from hikd.events import Event
from hikd.isapi_xml import key, parse, text_of
from hikd.sdk.alarm_out import set_alarm_out
from hikd.sdk.errors import NotSupportedError, SdkError
from hikd.xml_edit import EditError, set_own_text

if TYPE_CHECKING:
    from hikd.devices.session import DeviceSession

DETECTION_DOCUMENTS: Mapping[str, tuple[str, str, str]] = {
    "motion": (
        "MotionDetection",
        "/ISAPI/System/Video/inputs/channels/{id}/motionDetection",
        "/ISAPI/ContentMgmt/InputProxy/channels/{id}/video/motionDetection",
    ),
    "line_crossing": ("LineDetection", "/ISAPI/Smart/LineDetection/{id}", ""),
    "intrusion": ("FieldDetection", "/ISAPI/Smart/FieldDetection/{id}", ""),
}
"""Per detection: the document's root, its URL (the channel's ISAPI id), and the URL for
an NVR's IP channel where it differs (the camera's motion detection, as the recorder
proxies it; ``hikd doctor`` reads the same)."""

_TIMEOUT_MS = 10_000


class Refused(Exception):
    """The device cannot do what the command asks (no such output, no such detection)."""


def run_command(
    sessions: Mapping[str, DeviceSession],
    command: Command,
    publish: Callable[[Event], None],
    picture_dir: Path,
) -> CommandResult:
    """Carry out `command` on its device's session; a snapshot is stored under
    ``picture_dir/<device>/<date>/`` and announced by a file event."""
    session = sessions.get(command.device)
    if session is None:
        return CommandResult.refused(f"no device named {command.device!r} is configured")
    device = session.device
    if session.user_id is None or session.state != "online":
        why = f" ({session.last_error})" if session.last_error else ""
        return CommandResult.refused(f"{session.name} is not connected now{why}", device)
    try:
        if command.action == OUTPUT:
            switch_output(session, command.target, bool(command.on))
        elif command.action == SNAPSHOT:
            path = take_snapshot(session, command, picture_dir, publish)
            return CommandResult.done(device, (str(path),))
        elif command.action == DETECTION:
            switch_detection(session, command.target, command.detection, bool(command.on))
        else:
            return CommandResult.refused(f"unknown action {command.action!r}", device)
    except Refused as refusal:
        return CommandResult.refused(str(refusal), device)
    except NotSupportedError as error:
        return CommandResult.refused(_device_says(error, "the device does not support it"), device)
    except SdkError as error:
        return CommandResult.failed(_device_says(error, str(error)), device)
    return CommandResult.done(device)


def _device_says(error: SdkError, fallback: str) -> str:
    """The device's own words from an ISAPI ResponseStatus, with the library's error."""
    detail = error.detail.encode() if error.detail else b""
    status = text_of(detail, "statusString") if detail else ""
    sub = text_of(detail, "subStatusCode") if detail else ""
    words = ", ".join(part for part in (status, sub) if part)
    return f"{fallback}; the device says: {words}" if words else fallback


def _check_channel(session: DeviceSession, channel: int) -> None:
    numbers = session.channels.numbers
    if numbers and channel not in numbers:
        raise Refused(
            f"{session.name} has no channel {channel} (it has {min(numbers)}-{max(numbers)})"
        )


def switch_output(session: DeviceSession, output: int, on: bool) -> None:
    """Alarm output `output` (from 1) on or off."""
    count = session.facts.alarm_outputs if session.facts else 0
    if not 1 <= output <= count:
        outputs = f"{count} alarm output{'' if count == 1 else 's'}"
        raise Refused(f"{session.name} has {outputs}; there is no output {output}")
    if session.protocol == "private":
        user_id = session.user_id
        if user_id is None:
            raise SdkError(3, "not logged in")
        set_alarm_out(session.sdk, user_id, output - 1, on)
        return
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<IOPortData version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
        f"<outputState>{'high' if on else 'low'}</outputState>\n</IOPortData>\n"
    ).encode()
    session.isapi("PUT", f"/ISAPI/System/IO/outputs/{output}/trigger", body, _TIMEOUT_MS)


def take_snapshot(
    session: DeviceSession, command: Command, picture_dir: Path, publish: Callable[[Event], None]
) -> Path:
    """A snapshot of the command's channel, stored and announced (`snapshot_event`)."""
    channel = command.target
    _check_channel(session, channel)
    data = snapshot(session, channel)
    now = datetime.now(session.config.tzinfo() or UTC)
    path = picture_dir / session.name / now.strftime("%Y-%m-%d") / f"{command.id}-ch{channel}.jpg"
    write_picture(path, data)
    publish(snapshot_event(session, channel, path, len(data), command_id=command.id))
    return path


def switch_detection(session: DeviceSession, channel: int, detection: str, on: bool) -> None:
    """Read the detection's document of `channel`, set its ``<enabled>``, put it back."""
    _check_channel(session, channel)
    root, url_pattern, ip_url_pattern = DETECTION_DOCUMENTS[detection]
    found = session.channels.get(channel)
    if found is not None and found.kind == "ip" and ip_url_pattern:
        url_pattern = ip_url_pattern
    url = url_pattern.format(id=session.channels.device_id(channel))
    words = detection.replace("_", " ")
    try:
        document = session.isapi("GET", url, timeout_ms=_TIMEOUT_MS).body
    except NotSupportedError:
        raise Refused(f"{session.name} offers no {words} detection on channel {channel}") from None
    parsed = parse(document)
    if parsed is None or key(parsed.tag) != root.lower():
        raise Refused(f"{session.name} sent no {root} document for channel {channel}")
    edited = set_enabled(document, on)
    if edited is None:
        raise Refused(f"the {root} document of {session.name} cannot be changed safely")
    session.isapi("PUT", url, edited, _TIMEOUT_MS)


def set_enabled(document: bytes, on: bool) -> bytes | None:
    """`document` with its root's own ``<enabled>`` (not a line's or a region's) set to
    ``true``/``false``, every other byte as the device sent it (`hikd.xml_edit`); None when
    it cannot be changed safely (no such element, comments or CDATA in it)."""
    try:
        return set_own_text(document, "enabled", "true" if on else "false")
    except (EditError, UnicodeDecodeError):
        return None
