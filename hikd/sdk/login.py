"""NET_DVR_Login_V40 and the device facts of NET_DVR_DEVICEINFO_V40 (seed 5.3, 3.1).

Over ISAPI the library fills the serial, channel, alarm I/O and disk counts and the
protocol actually used (``byLoginMode``); the capability bits stay 0
(sdk-over-isapi.md part 1 §1), so hikd never relies on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from hikd.addresses import normal_ip, resolve_name
from hikd.sdk.constants import NET_DVR_CHECK_USER_STATUS
from hikd.sdk.convert import cstr, set_cstr
from hikd.sdk.errors import error_class
from hikd.sdk.ffi import ffi
from hikd.sdk.library import Library

LoginMode = Literal["private", "isapi", "adaptive"]
NET_DVR_NETWORK_FAIL_CONNECT = 7  # guide 6.1: connecting to the device failed
_LOGIN_MODES: dict[str, int] = {"private": 0, "isapi": 1, "adaptive": 2}
_PROTOCOLS = {0: "private", 1: "isapi"}

# byDVRType / wDevType values the library reports for ISAPI devices (part 1 §1) and the
# common private-protocol families (HCNetSDK.h DVR_TYPE list).
_DEVICE_TYPES = {
    1: "DVR",
    30: "IP camera",
    40: "IP dome",
    2216: "NVR",
}


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    serial: str
    device_type: str
    device_type_code: int
    analog_channels: int
    start_channel: int
    ip_channels: int
    start_ip_channel: int
    zero_channels: int
    audio_channels: int
    alarm_inputs: int
    alarm_outputs: int
    disks: int
    protocol: str
    """The protocol the session actually uses: ``private`` or ``isapi``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def channels(self) -> list[int]:
        """Every video channel number, analog first, as the vendor library numbers them on
        this login (hikd's own numbers are the session's `channels`)."""
        analog = range(self.start_channel, self.start_channel + self.analog_channels)
        ip = range(self.start_ip_channel, self.start_ip_channel + self.ip_channels)
        return [*analog, *(c for c in ip if c not in analog)]


def facts_from_deviceinfo(info: Any) -> DeviceFacts:
    v30 = info.struDeviceV30
    code = int(v30.wDevType) or int(v30.byDVRType)
    ip_channels = int(v30.byIPChanNum) + 256 * int(v30.byHighDChanNum)
    return DeviceFacts(
        serial=cstr(v30.sSerialNumber),
        device_type=_DEVICE_TYPES.get(code, f"type {code}"),
        device_type_code=code,
        analog_channels=int(v30.byChanNum),
        start_channel=int(v30.byStartChan),
        ip_channels=ip_channels,
        start_ip_channel=int(v30.byStartDChan) if ip_channels else 0,
        zero_channels=int(v30.byZeroChanNum),
        audio_channels=int(v30.byAudioChanNum),
        alarm_inputs=int(v30.byAlarmInPortNum),
        alarm_outputs=int(v30.byAlarmOutPortNum),
        disks=int(v30.byDiskNum),
        protocol=_PROTOCOLS.get(int(info.byLoginMode), f"mode {int(info.byLoginMode)}"),
    )


@dataclass(frozen=True, slots=True)
class LoginResult:
    user_id: int
    facts: DeviceFacts


@dataclass(frozen=True, slots=True)
class LoginFailureDetails:
    """What DEVICEINFO_V40 says about a failed login (lock support, tries left)."""

    retries_left: int | None
    lock_seconds: int | None


def device_address(host: str) -> str:
    """The IP address to log in to. The library refuses a host name (error 17 over ISAPI,
    README vendor-library notes), so a name is resolved here, at each login (DHCP or DNS
    may have moved the device); IPv4 first, as the library's own default."""
    if normal_ip(host) is not None:
        return host
    try:
        addresses = resolve_name(host)
    except (OSError, UnicodeError) as exc:
        raise error_class(NET_DVR_NETWORK_FAIL_CONNECT)(
            NET_DVR_NETWORK_FAIL_CONNECT,
            f"host name {host!r} does not resolve ({exc}); check it or give the IP address",
        ) from None
    return sorted(addresses, key=lambda a: (":" in a, a))[0]


def login(
    sdk: Library,
    host: str,
    port: int,
    username: str,
    password: str,
    mode: LoginMode = "isapi",
    https: bool = False,
) -> LoginResult:
    """One synchronous login attempt. Raises `SdkError` (with `.login_details` set)."""
    info_in = ffi.new("NET_DVR_USER_LOGIN_INFO *")
    set_cstr(info_in.sDeviceAddress, device_address(host), "host")
    info_in.wPort = port
    set_cstr(info_in.sUserName, username, "username")
    set_cstr(info_in.sPassword, password, "password")
    info_in.bUseAsynLogin = 0
    info_in.byLoginMode = _LOGIN_MODES[mode]
    # byHttps: 0 HTTP, 1 HTTPS, 2 adaptive. byVerifyMode 0: the certificate is not verified
    # (the library has no CA store of its own; part 1 §6).
    info_in.byHttps = 1 if https else 0
    info_out = ffi.new("NET_DVR_DEVICEINFO_V40 *")
    user_id = int(sdk.lib.NET_DVR_Login_V40(info_in, info_out))
    # Overwrite the password copy in the request struct as soon as the call returns.
    ffi.memmove(info_in.sPassword, b"\0" * len(info_in.sPassword), len(info_in.sPassword))
    if user_id < 0:
        error = sdk.last_error()
        # On a 401 the device tells how many tries are left before it locks the user
        # (byRetryLoginTime) and, when locked, for how long (dwSurplusLockTime).
        error.login_details = LoginFailureDetails(
            retries_left=int(info_out.byRetryLoginTime) if info_out.bySupportLock else None,
            lock_seconds=int(info_out.dwSurplusLockTime) or None,
        )
        raise error
    return LoginResult(user_id=user_id, facts=facts_from_deviceinfo(info_out))


def logout(sdk: Library, user_id: int) -> None:
    sdk.check(sdk.lib.NET_DVR_Logout(user_id))


def check_user_status(sdk: Library, user_id: int) -> None:
    """Raise when the session is dead. Over ISAPI: PUT sessionHeartbeat; on a 401 the
    library re-logs in by itself and succeeds (sdk-over-isapi.md part 2 §c)."""
    sdk.check(sdk.lib.NET_DVR_RemoteControl(user_id, NET_DVR_CHECK_USER_STATUS, ffi.NULL, 0))
