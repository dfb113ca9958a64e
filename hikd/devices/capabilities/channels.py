"""One channel numbering per device, and the number each place of the device uses.

A recorder numbers its cameras differently in different places:

* the ids of ``/ISAPI/ContentMgmt/InputProxy/channels`` (IP cameras) and
  ``/ISAPI/System/Video/inputs/channels`` (analog ones): usually 1, 2, ... but on some
  firmware IP channels from 33; streaming ids (``<id>01``, snapshots) and recording track
  ids (``<id>01``) follow them;
* the private protocol's numbers: analog from ``byStartChan``, IP from ``byStartDChan``
  (usually 33); some firmware puts these in ISAPI alerts' ``<channelID>`` too (an NVR whose
  InputProxy ids are 1..4 sending channel 34 for camera 2: hikvision_next's capture of a
  DS-7608NXI-I2), while ``<dynChannelID>`` carries the InputProxy id;
* the vendor library over ISAPI, which says IP channels start at 1 (or right after the
  analog ones) whatever the device says, ignoring the ids (sdk-over-isapi.md part 1 §1),
  and turns a channel into track and stream ids as ``<channel>01`` (part 2 a).

hikd numbers channels as the device's web page lists them: analog cameras 1..A, then the
IP cameras A+1..A+N in the order of their InputProxy ids (on an NVR without analog inputs
camera D1 is 1). Alarms, snapshots, downloads, status and MQTT topics all use that number;
`ChannelMap` turns it into the number each call needs and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from hikd.isapi_xml import fields, first, named, parse
from hikd.sdk.errors import SdkError, error_for

if TYPE_CHECKING:
    from hikd.sdk.login import DeviceFacts
    from hikd.sdk.passthrough import IsapiReply

VIDEO_INPUTS_URL = "/ISAPI/System/Video/inputs/channels"
INPUT_PROXY_URL = "/ISAPI/ContentMgmt/InputProxy/channels"
PRIVATE_IP_START = 33
"""The private protocol's first IP channel on recorders with up to 32 analog inputs (HCNetSDK.h
MAX_ANALOG_CHANNUM = 32): what alerts of such firmware say for IP camera 1."""


@dataclass(frozen=True, slots=True)
class Channel:
    number: int
    """hikd's number: what events, topics, job configs and commands use."""
    kind: Literal["analog", "ip"]
    name: str
    device_id: int
    """The device's ISAPI id (InputProxy or video input id): streams and tracks are
    ``<device_id>01``."""
    library_channel: int
    """What the vendor library takes as a channel (lChannel) on this session."""
    private_channel: int
    """The private protocol's number (alerts of some firmware carry it)."""
    source: str = ""
    """Where an IP channel's camera is: address and port, as the recorder lists it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChannelMap:
    """The channels of one device; built at login (`read_channel_map`)."""

    def __init__(self, channels: list[Channel]) -> None:
        self.channels = channels
        self._by_number = {c.number: c for c in channels}
        self._by_device_id = {c.device_id: c for c in channels}
        self._by_library = {c.library_channel: c for c in channels}
        self._by_private = {c.private_channel: c for c in channels}

    @property
    def numbers(self) -> list[int]:
        return [c.number for c in self.channels]

    def get(self, number: int) -> Channel | None:
        return self._by_number.get(number)

    def device_id(self, number: int) -> int:
        """The device's ISAPI id of channel `number`. Raises `NotFoundError` for a number
        the device does not have (an empty map, before any login, passes it through)."""
        return self._channel(number).device_id if self.channels else number

    def library_channel(self, number: int) -> int:
        """The vendor library's channel for `number`; raises like `device_id`."""
        return self._channel(number).library_channel if self.channels else number

    def _channel(self, number: int) -> Channel:
        channel = self._by_number.get(number)
        if channel is None:
            # Never pass an unknown number on: on a device whose ids start at 33, "33"
            # would be another camera. Error 4 is the library's own "no such channel".
            raise error_for(4, f"channel {number} (it has {_ranges(self.numbers)})")
        return channel

    def from_alert(self, value: int, dynamic: bool = False) -> int:
        """hikd's number for the channel an ISAPI alert names: by the device's ids first
        (what ``dynChannelID`` always is), else by the private protocol's numbers (33 and
        up on some firmware); a number hikd does not know stays as it is."""
        channel = self._by_device_id.get(value)
        if channel is None and not dynamic:
            channel = self._by_private.get(value)
        return channel.number if channel else value

    def from_device_id(self, value: int) -> int:
        channel = self._by_device_id.get(value)
        return channel.number if channel else value

    def from_library(self, value: int) -> int:
        """hikd's number for a channel as the vendor library numbers it on this session
        (binary alarms, work status, search results)."""
        channel = self._by_library.get(value)
        return channel.number if channel else value

    def names(self) -> dict[int, str]:
        return {c.number: c.name for c in self.channels if c.name}

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.channels]

    def __len__(self) -> int:
        return len(self.channels)


def _ranges(numbers: list[int]) -> str:
    return f"{numbers[0]}-{numbers[-1]}" if numbers else "none"


class IsapiSession(Protocol):
    """What reading the channel map needs of a session (`DeviceSession`, which calls it
    at each login: naming the class here would make the two import each other)."""

    @property
    def facts(self) -> DeviceFacts | None: ...

    def isapi(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        timeout_ms: int = 5000,
        buffer: int = 256 * 1024,
    ) -> IsapiReply: ...


def read_channel_map(session: IsapiSession) -> ChannelMap:
    """The session's channel map from its facts and, where the device has them, its
    channel lists (best effort: a device without them keeps the library's counts)."""
    facts = session.facts
    if facts is None:
        return ChannelMap([])
    # Both lists are read even where the library counted no channel: it reads them by
    # exact, case-sensitive names, and a device spelling them otherwise gets 0 from it.
    return channel_map(facts, _get(session, VIDEO_INPUTS_URL), _get(session, INPUT_PROXY_URL))


def _get(session: IsapiSession, url: str) -> bytes | None:
    try:
        return session.isapi("GET", url, timeout_ms=5000, buffer=256 * 1024).body
    except SdkError:
        return None


def channel_map(facts: DeviceFacts, analog: bytes | None, proxied: bytes | None) -> ChannelMap:
    """The map from the library's facts and the bodies of the two channel lists (None
    where the device has none)."""
    isapi = facts.protocol != "private"
    channels: list[Channel] = []
    listed = _listed(analog, "VideoInputChannel")
    analog_count = max(facts.analog_channels, len(listed))
    for i in range(analog_count):
        device_id, name, _source = listed[i] if i < len(listed) else (i + 1, "", "")
        library = device_id if isapi else facts.start_channel + i
        number = i + 1
        private = facts.start_channel + i if not isapi else number
        channels.append(Channel(number, "analog", name, device_id, library, private))
    listed = _listed(proxied, "InputProxyChannel")
    count = max(facts.ip_channels, len(listed))
    first_private = facts.start_ip_channel if not isapi else PRIVATE_IP_START
    for i in range(count):
        number = analog_count + i + 1
        device_id, name, source = listed[i] if i < len(listed) else (number, "", "")
        # Over ISAPI the library makes track and stream ids of the channel it is given
        # (``<channel>01``): giving it the device's id asks for the device's tracks.
        library = device_id if isapi else facts.start_ip_channel + i
        private = first_private + i
        channels.append(Channel(number, "ip", name, device_id, library, private, source))
    return ChannelMap(channels)


def _listed(body: bytes | None, entry: str) -> list[tuple[int, str, str]]:
    """(id, name, source) of each entry of a channel list, by id."""
    root = parse(body) if body else None
    if root is None:
        return []
    out = []
    for element in named(root, entry):
        values = fields(element)
        try:
            device_id = int(values.get("id", ""))
        except ValueError:
            continue
        source = ""
        for descriptor in named(element, "sourceInputPortDescriptor"):
            port = fields(descriptor)
            address = first(port, "ipAddress", "hostName")
            if address:
                manage = first(port, "managePortNo")
                source = f"{address}:{manage}" if manage else address
            break
        out.append((device_id, first(values, "name", "channelName"), source))
    return sorted(out)
