"""The ISAPI XML documents a simulated device serves about itself (ISAPI 2.0 schema).

The library reads only some fields (sdk-over-isapi.md part 1 §1, DEVICEINFO_V40 table:
it counts <IOInputPort>, <VideoInputChannel>, <InputProxyChannel>, <hdd>, ...); the rest
is there so that the documents look like a real device's to other ISAPI clients.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from xml.sax.saxutils import escape

from hikd.sim.config import SimDeviceConfig

NS = "http://www.isapi.org/ver20/XMLSchema"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'


def document(root: str, inner: str) -> bytes:
    return f'{PROLOG}<{root} version="2.0" xmlns="{NS}">\n{inner}</{root}>\n'.encode()


def elements(**fields: object) -> str:
    """`<key>value</key>` lines, values escaped; booleans in ISAPI spelling."""
    out = []
    for key, value in fields.items():
        text = str(value).lower() if isinstance(value, bool) else escape(str(value))
        out.append(f"<{key}>{text}</{key}>\n")
    return "".join(out)


def response_status(url: str, code: int = 1, text: str = "OK", sub: str = "ok") -> bytes:
    """ISAPI's generic answer. statusCode 1 = OK, 4 = Invalid Operation, ..."""
    return document(
        "ResponseStatus",
        elements(requestURL=url, statusCode=code, statusString=text, subStatusCode=sub),
    )


def not_supported(url: str) -> bytes:
    return response_status(url, 4, "Invalid Operation", "notSupport")


def device_zone(cfg: SimDeviceConfig) -> timezone:
    return timezone(timedelta(minutes=cfg.utc_offset_minutes))


def device_now(cfg: SimDeviceConfig) -> datetime:
    return datetime.now(UTC).astimezone(device_zone(cfg))


class DeviceClock:
    """The device's wall clock at one-second resolution, cheap enough to read per event."""

    def __init__(self, cfg: SimDeviceConfig) -> None:
        self.zone = device_zone(cfg)
        self._second = -1
        self._now = datetime.now(UTC)
        self._wall = self._now.replace(tzinfo=None)
        self._text = ""

    def _tick(self) -> None:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._now = datetime.fromtimestamp(second, self.zone)
            self._wall = self._now.replace(tzinfo=None)
            self._text = self._now.isoformat(timespec="seconds")

    def now(self) -> datetime:
        """Aware, in the device's zone, whole seconds."""
        self._tick()
        return self._now

    def wall(self) -> datetime:
        """Naive device wall-clock time (what ISAPI search and log times use)."""
        self._tick()
        return self._wall

    def text(self) -> str:
        """ISAPI dateTime with the device's UTC offset, e.g. 2024-05-01T10:00:00+02:00."""
        self._tick()
        return self._text


def device_info(cfg: SimDeviceConfig) -> bytes:
    return document(
        "DeviceInfo",
        elements(
            deviceName=cfg.device_name,
            deviceID=cfg.device_id,
            model=cfg.model,
            serialNumber=cfg.serial_number,
            macAddress=cfg.mac_address,
            firmwareVersion=cfg.firmware_version,
            firmwareReleasedDate=cfg.firmware_released_date,
            encoderVersion="V7.3",
            encoderReleasedDate=cfg.firmware_released_date,
            deviceType=cfg.device_type,
            telecontrolID=88,
        ),
    )


def io_inputs(cfg: SimDeviceConfig) -> bytes:
    ports = "".join(
        f"<IOInputPort>\n{elements(id=i, enabled=True, triggering='low')}</IOInputPort>\n"
        for i in range(1, cfg.alarm_inputs + 1)
    )
    return document("IOInputPortList", ports)


def io_outputs(cfg: SimDeviceConfig) -> bytes:
    power_on = (
        "<PowerOnState>\n"
        + elements(defaultState="low", outputState="pulse", pulseDuration=1000)
        + "</PowerOnState>\n"
    )
    ports = "".join(
        f"<IOOutputPort>\n{elements(id=i)}{power_on}</IOOutputPort>\n"
        for i in range(1, cfg.alarm_outputs + 1)
    )
    return document("IOOutputPortList", ports)


def video_inputs(cfg: SimDeviceConfig) -> bytes:
    channels = "".join(
        "<VideoInputChannel>\n"
        + elements(
            id=i,
            inputPort=i,
            videoInputEnabled=True,
            name=f"Camera {i:02d}",
            videoFormat="PAL",
            resDesc="1920*1080P",
        )
        + "</VideoInputChannel>\n"
        for i in range(1, cfg.analog_channels + 1)
    )
    return document("VideoInputChannelList", channels)


def input_proxy_channels(cfg: SimDeviceConfig) -> bytes:
    # IP channels follow the analog ones unless variants.ip_channel_first_id says (the
    # library ignores the ids and numbers them 1..N from byStartDChan=1 anyway, part 2 §1).
    first = cfg.analog_channels + 1
    channels = []
    for n, channel in enumerate(range(first, first + cfg.ip_channels), start=1):
        i = cfg.channel_id(channel)
        source = (
            "<sourceInputPortDescriptor>\n"
            + elements(
                proxyProtocol="HIKVISION",
                addressingFormatType="ipaddress",
                ipAddress=f"192.168.254.{1 + n}",
                managePortNo=8000,
                srcInputPort=1,
                userName="admin",
                streamType="auto",
            )
            + "</sourceInputPortDescriptor>\n"
        )
        channels.append(
            "<InputProxyChannel>\n"
            + elements(id=i, name=f"IPCamera {n:02d}")
            + source
            + elements(enableAnr=False, enableTiming=True)
            + "</InputProxyChannel>\n"
        )
    return document("InputProxyChannelList", "".join(channels))


def zero_channels(cfg: SimDeviceConfig) -> bytes:
    channels = "".join(
        "<ZeroVideoChannel>\n"
        + elements(id=i, enabled=True, maxFrameRate=2500)
        + "</ZeroVideoChannel>\n"
        for i in range(1, cfg.zero_channels + 1)
    )
    return document("ZeroVideoChannelList", channels)


def audio_channels(cfg: SimDeviceConfig) -> bytes:
    channels = "".join(
        "<TwoWayAudioChannel>\n"
        + elements(
            id=i,
            enabled=False,
            audioCompressionType="G.711ulaw",
            speakerVolume=50,
            noisereduce=False,
        )
        + "</TwoWayAudioChannel>\n"
        for i in range(1, cfg.audio_channels + 1)
    )
    return document("TwoWayAudioChannelList", channels)


def hdd_list(cfg: SimDeviceConfig) -> bytes:
    disks = "".join(
        f'<hdd version="2.0" xmlns="{NS}">\n'
        + elements(
            id=d.id,
            hddName=f"hdd{d.id}",
            hddPath="",
            hddType="SATA",
            status=d.status,
            capacity=d.capacity_mb,
            freeSpace=d.free_mb,
            property=d.property,
        )
        + "</hdd>\n"
        for d in cfg.disks
    )
    return document("hddList", disks)


def security_capabilities(cfg: SimDeviceConfig) -> bytes:
    # No <securityVersion>: with it the library asks InputProxy/channels?security=1&iv=...
    # and expects encrypted camera passwords (part 1 §1). Nothing else changes.
    return document(
        "SecurityCap",
        elements(
            supportUserNums=32,
            userBondIpNums=0,
            userBondMacNums=0,
            isSupCertificate=True,
            issupIllegalLoginLock=True,
            isSupportOnlineUser=True,
            isSupportAnonymous=False,
            isSupportStreamEncryption=False,
        )
        + f'<maxIllegalLoginTimes min="3" max="20">{cfg.lock_after}</maxIllegalLoginTimes>\n'
        + f"<illegalLoginLockTime>{cfg.lock_seconds}</illegalLoginLockTime>\n",
    )


def language() -> bytes:
    return document("Language", elements(type="English"))


def posix_zone(offset_minutes: int) -> str:
    """Hikvision writes time zones POSIX-style, sign inverted: UTC+8 is `CST-8:00:00`."""
    sign = "-" if offset_minutes >= 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"CST{sign}{hours}:{minutes:02d}:00"


def system_time(cfg: SimDeviceConfig) -> bytes:
    return document(
        "Time",
        elements(
            timeMode="NTP",
            localTime=device_now(cfg).isoformat(timespec="seconds"),
            timeZone=posix_zone(cfg.utc_offset_minutes),
        ),
    )


def capabilities_reply(
    session_id: str,
    challenge: str,
    iterations: int,
    salt: str,
    *,
    session_id_version: str | None,
    salt2: str | None,
) -> bytes:
    inner = ""
    if session_id_version is not None:
        inner += elements(sessionIDVersion=session_id_version)
    inner += elements(
        sessionID=session_id,
        challenge=challenge,
        iterations=iterations,
        isSupportRTSPWithSession=True,
        isIrreversible=True,
        salt=salt,
    )
    if salt2 is not None:
        inner += elements(salt2=salt2)
    return document("SessionLoginCap", inner)


def login_ok(session_id: str) -> bytes:
    return document(
        "SessionLogin",
        elements(
            statusValue=200,
            statusString="OK",
            isDefaultPassword=False,
            isRiskPassword=False,
            isActivated=True,
            sessionID=session_id,
            sessionTag=session_id[:16],
        ),
    )


def user_check(*, locked: bool, unlock_in_s: int, retries_left: int) -> bytes:
    """The 401 body of a refused login: the library fills byRetryLoginTime from it, or
    reports error 153 (user locked) with dwSurplusLockTime when lockStatus is lock."""
    return document(
        "userCheck",
        elements(
            statusValue=401,
            statusString="Unauthorized",
            lockStatus="lock" if locked else "unlock",
            unlockTime=unlock_in_s if locked else 0,
            retryLoginTime=0 if locked else retries_left,
        ),
    )


def not_logged_in() -> bytes:
    return document("userCheck", elements(statusValue=401, statusString="Unauthorized"))
