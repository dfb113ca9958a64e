"""The SDK's error codes (guide chapter 6) as exceptions, and its log types (guide 6.5).

`error_for(code)` turns the number from NET_DVR_GetLastError into an exception whose
class tells a caller what to do:

| class | codes (examples) | what the caller does |
| --- | --- | --- |
| `NetworkError` | 7, 8, 9, 10, 14, 73, RTSP time-outs | transient: retry with backoff |
| `DeviceBusyError` | 5, 24, 28, 36, 52, 90 | transient: retry later |
| `AuthError` | 1, 152, 153, 250-252, 834 | never retry soon: retries lock the account |
| `PermissionDeniedError` | 2, 13 | give the user the right on the device |
| `SessionExpiredError` | 47, 102, 154 | log in again |
| `NotSupportedError` | 23, 91, 189, ... | take another route (ISAPI pass-through) |
| `BufferTooSmallError` | 43, 1001 | retry with a bigger buffer |
| `NotFoundError` | 4, 33, 60, RTSP 404 | no such channel, file or device |
| `DiskError` | 19-22, 59, 78, ... | the device's storage needs attention |
| `LocalFileError` | 34, 35, 40, 71, 77 | fix the local path or its permissions |
| `ListenError` | 72, 75, 104 | the listen address or port is taken or not allowed |
| `LibraryError` | 64-68, 84, 85, 107-157 | the SDK installation is incomplete or mixed |
| `SdkError` | everything else, and unknown codes | report it |

`transient` on the class says whether retrying the same call soon may succeed.
The user-fixable families are also `hikd.errors.UserError`: their `str()` is one line.

Messages are translated from the guide (V5.2, chapter 6). Codes the guide does not list
but the V6 library returns (189, 147-149, 158-162) come from the V6 header and from
the observed behaviour in sdk-over-isapi.md; each says so.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hikd.errors import UserError


class SdkError(Exception):
    """A vendor SDK call failed with error `code` (NET_DVR_GetLastError)."""

    transient: ClassVar[bool] = False
    """Whether repeating the same call soon may succeed."""

    detail: str = ""
    """Extra text from the device (e.g. an ISAPI ResponseStatus); set by the caller."""
    login_details: Any = None
    """What a failed login learnt (retries left, lock time); set by the login code."""

    def __init__(self, code: int, message: str = "", vendor_message: str = "") -> None:
        self.code = code
        self.name = ERROR_NAMES.get(code, "")
        self.message = message or ERROR_MESSAGES.get(code) or f"unknown SDK error {code}"
        self.vendor_message = vendor_message
        super().__init__(code, self.message)

    def __str__(self) -> str:
        name = f" {self.name}" if self.name else ""
        return f"{self.message} (SDK error {self.code}{name})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.message!r})"


class NetworkError(SdkError):
    """The device could not be reached or stopped answering. Retry with backoff."""

    transient = True


class DeviceBusyError(SdkError):
    """The device (or the SDK) is at a limit or busy with another job. Retry later."""

    transient = True


class AuthError(SdkError, UserError):
    """The device refused the credentials or the account. Do not retry soon: every
    wrong attempt counts towards the device locking the user (error 153)."""


class PermissionDeniedError(SdkError, UserError):
    """The user has no right to do this on the device."""


class SessionExpiredError(SdkError):
    """The login session (user ID) is gone. Log in again."""


class NotSupportedError(SdkError):
    """The device, channel or protocol does not support the call. Note the library returns
    189 (ISAPI not supported) for private-protocol calls on an ISAPI login."""


class BufferTooSmallError(SdkError):
    """The output buffer was too small for the device's reply."""


class NotFoundError(SdkError):
    """No such channel, recording, URL or backup device."""


class DiskError(SdkError):
    """The device has no disk, a full or failed disk, or no room on the backup medium."""


class LocalFileError(SdkError, UserError):
    """The library could not create, open or write a file on this machine."""


class ListenError(SdkError, UserError):
    """The library could not bind or listen on the local address and port."""


class LibraryError(SdkError, UserError):
    """A component of the vendor SDK is missing or from another version."""


_FAMILIES: tuple[tuple[type[SdkError], frozenset[int]], ...] = (
    (
        NetworkError,
        frozenset(
            {7, 8, 9, 10, 14, 44, 45, 73, 83, 96, 97, 159, 165, 803}
            | {410, 411, 412, 413, 414, 415, 420, 421, 422, 423, 424, 425}
            | {430, 431, 432, 433, 434, 435, 440, 441, 442, 443, 444, 445}
        ),
    ),
    (DeviceBusyError, frozenset({5, 24, 27, 28, 36, 46, 52, 74, 90, 215, 426, 800, 2103})),
    (AuthError, frozenset({1, 152, 153, 155, 250, 251, 252, 401, 834})),
    (PermissionDeniedError, frozenset({2, 13})),
    (SessionExpiredError, frozenset({47, 102, 154})),
    (NotSupportedError, frozenset({23, 91, 98, 105, 189, 230, 1000, 601})),
    (BufferTooSmallError, frozenset({43, 1001})),
    (NotFoundError, frozenset({4, 33, 60, 229, 404})),
    (DiskError, frozenset({19, 20, 21, 22, 59, 78, 802, 805})),
    (LocalFileError, frozenset({34, 35, 40, 71, 77})),
    (ListenError, frozenset({72, 75, 104})),
    (
        LibraryError,
        frozenset(
            {64, 65, 66, 67, 84, 85, 100, 148, 149, 156, 157, 158, 161, 162}
            | set(range(107, 116))
            | set(range(121, 129))
            | set(range(136, 143))
        ),
    ),
)


def error_class(code: int) -> type[SdkError]:
    """The exception class for an SDK error code (`SdkError` when no family fits)."""
    for cls, codes in _FAMILIES:
        if code in codes:
            return cls
    return SdkError


def error_for(code: int, vendor_message: str = "") -> SdkError:
    """An exception instance for any error code; unknown codes give "unknown SDK error N"."""
    return error_class(code)(code, vendor_message=vendor_message)


# (code, macro name, what it means). Values of names that HCNetSDK.h defines are checked
# against the header by tests/sdk/test_errors.py; the RAID and N+1 macros are expressions
# in the header (base + n), so only the guide gives their values.
_ERRORS: tuple[tuple[int, str, str], ...] = (
    # 6.1 network library
    (0, "NET_DVR_NOERROR", "no error"),
    (1, "NET_DVR_PASSWORD_ERROR", "wrong user name or password"),
    (2, "NET_DVR_NOENOUGHPRI", "the user has no permission for this operation"),
    (3, "NET_DVR_NOINIT", "the SDK is not initialised"),
    (4, "NET_DVR_CHANNEL_ERROR", "the device has no such channel"),
    (5, "NET_DVR_OVER_MAXLINK", "too many clients are connected to the device"),
    (6, "NET_DVR_VERSIONNOMATCH", "the SDK and the device versions do not match"),
    (
        7,
        "NET_DVR_NETWORK_FAIL_CONNECT",
        "cannot connect to the device (offline or network time-out)",
    ),
    (8, "NET_DVR_NETWORK_SEND_ERROR", "sending to the device failed"),
    (9, "NET_DVR_NETWORK_RECV_ERROR", "receiving from the device failed"),
    (10, "NET_DVR_NETWORK_RECV_TIMEOUT", "timed out waiting for the device's answer"),
    (
        11,
        "NET_DVR_NETWORK_ERRORDATA",
        "invalid data to or from the device (e.g. a value it does not support)",
    ),
    (12, "NET_DVR_ORDER_ERROR", "SDK functions were called in the wrong order"),
    (13, "NET_DVR_OPERNOPERMIT", "no permission for this operation"),
    (14, "NET_DVR_COMMANDTIMEOUT", "the device timed out executing the command"),
    (15, "NET_DVR_ERRORSERIALPORT", "the device has no such serial port"),
    (16, "NET_DVR_ERRORALARMPORT", "the device has no such alarm output"),
    (17, "NET_DVR_PARAMETER_ERROR", "invalid parameter (an argument is wrong or empty)"),
    (18, "NET_DVR_CHAN_EXCEPTION", "the device channel is in an error state"),
    (19, "NET_DVR_NODISK", "the device has no hard disk"),
    (20, "NET_DVR_ERRORDISKNUM", "the device has no such hard disk number"),
    (21, "NET_DVR_DISK_FULL", "the device's hard disk is full"),
    (22, "NET_DVR_DISK_ERROR", "the device's hard disk has an error"),
    (23, "NET_DVR_NOSUPPORT", "the device does not support this"),
    (24, "NET_DVR_BUSY", "the device is busy"),
    (25, "NET_DVR_MODIFY_FAIL", "the device could not apply the change"),
    (26, "NET_DVR_PASSWORD_FORMAT_ERROR", "the password format is invalid"),
    (27, "NET_DVR_DISK_FORMATING", "a hard disk is being formatted; try again later"),
    (28, "NET_DVR_DVRNORESOURCE", "the device is out of resources"),
    (29, "NET_DVR_DVROPRATEFAILED", "the device operation failed"),
    (30, "NET_DVR_OPENHOSTSOUND_FAIL", "could not capture local audio or open audio output"),
    (31, "NET_DVR_DVRVOICEOPENED", "the device's two-way audio is already in use"),
    (32, "NET_DVR_TIMEINPUTERROR", "invalid time"),
    (33, "NET_DVR_NOSPECFILE", "the device has no such recording file"),
    (34, "NET_DVR_CREATEFILE_ERROR", "could not create the local file"),
    (35, "NET_DVR_FILEOPENFAIL", "could not open the file"),
    (36, "NET_DVR_OPERNOTFINISH", "the previous operation has not finished"),
    (37, "NET_DVR_GETPLAYTIMEFAIL", "could not get the current playback time"),
    (38, "NET_DVR_PLAYFAIL", "playback failed"),
    (39, "NET_DVR_FILEFORMAT_ERROR", "wrong file format"),
    (40, "NET_DVR_DIR_ERROR", "invalid path"),
    (41, "NET_DVR_ALLOC_RESOURCE_ERROR", "the SDK could not allocate a resource"),
    (42, "NET_DVR_AUDIO_MODE_ERROR", "the sound card mode does not match the requested mode"),
    (43, "NET_DVR_NOENOUGH_BUF", "the buffer is too small for the device's data"),
    (44, "NET_DVR_CREATESOCKET_ERROR", "could not create a socket"),
    (45, "NET_DVR_SETSOCKET_ERROR", "could not set a socket option"),
    (46, "NET_DVR_MAX_NUM", "the SDK's maximum number of logins or streams is reached"),
    (47, "NET_DVR_USERNOTEXIST", "the login session no longer exists (logged out or invalid)"),
    (48, "NET_DVR_WRITEFLASHERROR", "writing the device's flash failed during an upgrade"),
    (49, "NET_DVR_UPGRADEFAIL", "the device upgrade failed"),
    (50, "NET_DVR_CARDHAVEINIT", "the decoder card is already initialised"),
    (51, "NET_DVR_PLAYERFAILED", "a call into the player library failed"),
    (52, "NET_DVR_MAX_USERNUM", "the device's maximum number of logged-in users is reached"),
    (53, "NET_DVR_GETLOCALIPANDMACFAIL", "could not get this computer's IP or MAC address"),
    (54, "NET_DVR_NOENCODEING", "encoding is not started on this channel"),
    (55, "NET_DVR_IPMISMATCH", "the IP address does not match"),
    (56, "NET_DVR_MACMISMATCH", "the MAC address does not match"),
    (57, "NET_DVR_UPGRADELANGMISMATCH", "the upgrade file's language does not match"),
    (58, "NET_DVR_MAX_PLAYERPORT", "the maximum number of player channels is reached"),
    (59, "NET_DVR_NOSPACEBACKUP", "not enough space on the backup device"),
    (60, "NET_DVR_NODEVICEBACKUP", "the backup device was not found"),
    (61, "NET_DVR_PICTURE_BITS_ERROR", "wrong picture colour depth (24-bit only)"),
    (62, "NET_DVR_PICTURE_DIMENSION_ERROR", "the picture is too large (at most 128x256)"),
    (63, "NET_DVR_PICTURE_SIZ_ERROR", "the picture file is too large (at most 100 KB)"),
    (64, "NET_DVR_LOADPLAYERSDKFAILED", "could not load the player library"),
    (65, "NET_DVR_LOADPLAYERSDKPROC_ERROR", "a function is missing from the player library"),
    (66, "NET_DVR_LOADDSSDKFAILED", "could not load the hardware decoder library (DsSdk)"),
    (67, "NET_DVR_LOADDSSDKPROC_ERROR", "a function is missing from the hardware decoder library"),
    (68, "NET_DVR_DSSDK_ERROR", "a call into the hardware decoder library failed"),
    (69, "NET_DVR_VOICEMONOPOLIZE", "the sound card is in exclusive use"),
    (70, "NET_DVR_JOINMULTICASTFAILED", "could not join the multicast group"),
    (71, "NET_DVR_CREATEDIR_ERROR", "could not create the log directory"),
    (72, "NET_DVR_BINDSOCKET_ERROR", "could not bind the socket (address or port in use?)"),
    (73, "NET_DVR_SOCKETCLOSE_ERROR", "the connection broke or the device is unreachable"),
    (74, "NET_DVR_USERID_ISUSING", "the session is busy with an operation and cannot log out"),
    (75, "NET_DVR_SOCKETLISTEN_ERROR", "could not listen on the socket"),
    (76, "NET_DVR_PROGRAM_EXCEPTION", "internal exception in the SDK"),
    (77, "NET_DVR_WRITEFILE_FAILED", "could not write the local file"),
    (78, "NET_DVR_FORMAT_READONLY", "a read-only disk cannot be formatted"),
    (79, "NET_DVR_WITHSAMEUSERNAME", "the user configuration has a duplicate user name"),
    (80, "NET_DVR_DEVICETYPE_ERROR", "the imported configuration is for another device model"),
    (81, "NET_DVR_LANGUAGE_ERROR", "the imported configuration is in another language"),
    (82, "NET_DVR_PARAVERSION_ERROR", "the imported configuration is for another firmware version"),
    (83, "NET_DVR_IPCHAN_NOTALIVE", "the camera of this IP channel is offline"),
    (
        84,
        "NET_DVR_RTSP_SDK_ERROR",
        "could not load the standard-protocol library (StreamTransClient)",
    ),
    (85, "NET_DVR_CONVERT_SDK_ERROR", "could not load the stream conversion library"),
    (86, "NET_DVR_IPC_COUNT_OVERFLOW", "the maximum number of IP channels is exceeded"),
    (87, "NET_DVR_MAX_ADD_NUM", "the maximum number of items (e.g. recording tags) is exceeded"),
    (88, "NET_DVR_PARAMMODE_ERROR", "image enhancer: wrong parameter mode"),
    (89, "NET_DVR_CODESPITTER_OFFLINE", "the code splitter is offline"),
    (90, "NET_DVR_BACKUP_COPYING", "the device is busy with a backup"),
    (91, "NET_DVR_CHAN_NOTSUPPORT", "the channel does not support this operation"),
    (
        92,
        "NET_DVR_CALLINEINVALID",
        "calibration: height lines too close or length lines not slanted enough",
    ),
    (
        93,
        "NET_DVR_CALCANCELCONFLICT",
        "calibration is in use by rules or size filters and cannot be cancelled",
    ),
    (94, "NET_DVR_CALPOINTOUTRANGE", "calibration point out of range"),
    (95, "NET_DVR_FILTERRECTINVALID", "the size filter is invalid"),
    (96, "NET_DVR_DDNS_DEVOFFLINE", "the device is not registered with DDNS"),
    (97, "NET_DVR_DDNS_INTER_ERROR", "DDNS server internal error"),
    # 98: V6 header only
    (
        98,
        "NET_DVR_FUNCTION_NOT_SUPPORT_OS",
        "the function is not supported on this operating system",
    ),
    (100, "NET_DVR_INTERCOM_SDK_ERROR", "could not load the audio intercom library"),
    (101, "NET_DVR_NO_CURRENT_UPDATEFILE", "no valid upgrade package"),
    (102, "NET_DVR_USER_NOT_SUCC_LOGIN", "the user has not logged in successfully"),
    (103, "NET_DVR_USE_LOG_SWITCH_FILE", "the log switch file is in use"),
    (104, "NET_DVR_POOL_PORT_EXHAUST", "no free port left in the SDK's port pool"),
    (105, "NET_DVR_PACKET_TYPE_NOT_SUPPORT", "unsupported stream container format"),
    (106, "NET_DVR_IPPARA_IPID_ERROR", "wrong IP device ID in the IP channel configuration"),
    (107, "NET_DVR_LOAD_HCPREVIEW_SDK_ERROR", "could not load the preview component"),
    (108, "NET_DVR_LOAD_HCVOICETALK_SDK_ERROR", "could not load the voice talk component"),
    (109, "NET_DVR_LOAD_HCALARM_SDK_ERROR", "could not load the alarm component"),
    (110, "NET_DVR_LOAD_HCPLAYBACK_SDK_ERROR", "could not load the playback component"),
    (111, "NET_DVR_LOAD_HCDISPLAY_SDK_ERROR", "could not load the display component"),
    (112, "NET_DVR_LOAD_HCINDUSTRY_SDK_ERROR", "could not load the industry component"),
    (
        113,
        "NET_DVR_LOAD_HCGENERALCFGMGR_SDK_ERROR",
        "could not load the configuration management component",
    ),
    # 114-115: V6 header only
    (
        114,
        "NET_DVR_LOAD_HCCOREDEVCFG_SDK_ERROR",
        "could not load the device configuration component",
    ),
    (115, "NET_DVR_LOAD_HCNETUTILS_SDK_ERROR", "could not load the HCNetUtils component"),
    (121, "NET_DVR_CORE_VER_MISMATCH", "a component does not match the core library version"),
    (
        122,
        "NET_DVR_CORE_VER_MISMATCH_HCPREVIEW",
        "the preview component does not match the core library",
    ),
    (
        123,
        "NET_DVR_CORE_VER_MISMATCH_HCVOICETALK",
        "the voice talk component does not match the core library",
    ),
    (
        124,
        "NET_DVR_CORE_VER_MISMATCH_HCALARM",
        "the alarm component does not match the core library",
    ),
    (
        125,
        "NET_DVR_CORE_VER_MISMATCH_HCPLAYBACK",
        "the playback component does not match the core library",
    ),
    (
        126,
        "NET_DVR_CORE_VER_MISMATCH_HCDISPLAY",
        "the display component does not match the core library",
    ),
    (
        127,
        "NET_DVR_CORE_VER_MISMATCH_HCINDUSTRY",
        "the industry component does not match the core library",
    ),
    (
        128,
        "NET_DVR_CORE_VER_MISMATCH_HCGENERALCFGMGR",
        "the configuration component does not match the core library",
    ),
    (136, "NET_DVR_COM_VER_MISMATCH_HCPREVIEW", "the preview component does not match HCNetSDK"),
    (
        137,
        "NET_DVR_COM_VER_MISMATCH_HCVOICETALK",
        "the voice talk component does not match HCNetSDK",
    ),
    (138, "NET_DVR_COM_VER_MISMATCH_HCALARM", "the alarm component does not match HCNetSDK"),
    (139, "NET_DVR_COM_VER_MISMATCH_HCPLAYBACK", "the playback component does not match HCNetSDK"),
    (140, "NET_DVR_COM_VER_MISMATCH_HCDISPLAY", "the display component does not match HCNetSDK"),
    (141, "NET_DVR_COM_VER_MISMATCH_HCINDUSTRY", "the industry component does not match HCNetSDK"),
    (
        142,
        "NET_DVR_COM_VER_MISMATCH_HCGENERALCFGMGR",
        "the configuration component does not match HCNetSDK",
    ),
    # 147-149: V6 header only
    (147, "NET_DVR_CERTIFICATE_FILE_ERROR", "the certificate file is invalid"),
    (148, "NET_DVR_LOAD_SSL_LIB_ERROR", "could not load the SSL library (libssl/libcrypto)"),
    (149, "NET_DVR_SSL_VERSION_NOT_MATCH", "the SSL library version does not match"),
    (150, "NET_DVR_ALIAS_DUPLICATE", "the alias is already in use (EasyDDNS)"),
    (152, "NET_DVR_USERNAME_NOT_EXIST", "the user name does not exist"),
    # The guide calls 153 NET_ERR_USERNAME_LOCKED; the header's name is NET_DVR_USER_LOCKED.
    (153, "NET_DVR_USER_LOCKED", "the user is locked on the device after too many wrong passwords"),
    (154, "NET_DVR_INVALID_USERID", "invalid login session (user ID)"),
    (155, "NET_DVR_LOW_LOGIN_VERSION", "the login protocol version is too old"),
    (156, "NET_DVR_LOAD_LIBEAY32_DLL_ERROR", "could not load libcrypto (libeay32)"),
    (157, "NET_DVR_LOAD_SSLEAY32_DLL_ERROR", "could not load libssl (ssleay32)"),
    # 158-162: V6 header only
    (158, "NET_ERR_LOAD_LIBICONV", "could not load libiconv"),
    (159, "NET_ERR_SSL_CONNECT_FAILED", "the TLS connection to the device failed"),
    (161, "NET_ERR_LOAD_ZLIB", "could not load zlib"),
    (162, "NET_ERR_OPENSSL_NO_INIT", "OpenSSL is not initialised"),
    (165, "NET_DVR_TEST_SERVER_FAIL_CONNECT", "could not connect to the test server"),
    # 189: not in the guide or the header facts; the V6 library returns it for private-
    # protocol calls on an ISAPI login, also as a per-item status (sdk-over-isapi.md).
    (
        189,
        "NET_DVR_ISAPI_NOT_SUPPORT",
        "not supported over ISAPI (private-protocol call on an ISAPI login)",
    ),
    # RAID (array) errors
    (200, "NET_DVR_NAME_NOT_ONLY", "the name already exists"),
    (201, "NET_DVR_OVER_MAX_ARRAY", "the maximum number of arrays is reached"),
    (202, "NET_DVR_OVER_MAX_VD", "the maximum number of virtual disks is reached"),
    (203, "NET_DVR_VD_SLOT_EXCEED", "the virtual disk slots are full"),
    (
        204,
        "NET_DVR_PD_STATUS_INVALID",
        "a physical disk needed to rebuild the array is in a wrong state",
    ),
    (
        205,
        "NET_DVR_PD_BE_DEDICATE_SPARE",
        "a physical disk needed to rebuild the array is a dedicated spare",
    ),
    (206, "NET_DVR_PD_NOT_FREE", "a physical disk needed to rebuild the array is not free"),
    (207, "NET_DVR_CANNOT_MIG2NEWMODE", "the array cannot migrate from its type to the new one"),
    (208, "NET_DVR_MIG_PAUSE", "the migration is paused"),
    (209, "NET_DVR_MIG_CANCEL", "the running migration was cancelled"),
    (210, "NET_DVR_EXIST_VD", "the array has virtual disks and cannot be deleted"),
    (211, "NET_DVR_TARGET_IN_LD_FUNCTIONAL", "the physical disk is part of a working virtual disk"),
    (
        212,
        "NET_DVR_HD_IS_ASSIGNED_ALREADY",
        "the physical disk is already assigned to a virtual disk",
    ),
    (213, "NET_DVR_INVALID_HD_COUNT", "the number of physical disks does not fit the RAID level"),
    (214, "NET_DVR_LD_IS_FUNCTIONAL", "the array is healthy and cannot be rebuilt"),
    (215, "NET_DVR_BGA_RUNNING", "a background task is running"),
    (216, "NET_DVR_LD_NO_ATAPI", "a virtual disk cannot be made from ATAPI disks"),
    (217, "NET_DVR_MIGRATION_NOT_NEED", "the array needs no migration"),
    (218, "NET_DVR_HD_TYPE_MISMATCH", "the physical disks are not of the same type"),
    (219, "NET_DVR_NO_LD_IN_DG", "there is no virtual disk for this operation"),
    (220, "NET_DVR_NO_ROOM_FOR_SPARE", "the disk is too small to be a hot spare"),
    (221, "NET_DVR_SPARE_IS_IN_MULTI_DG", "the disk is already a hot spare of an array"),
    (222, "NET_DVR_DG_HAS_MISSING_PD", "the array is missing a disk"),
    (223, "NET_DVR_NAME_EMPTY", "the name is empty"),
    (224, "NET_DVR_INPUT_PARAM", "invalid input parameter"),
    (225, "NET_DVR_PD_NOT_AVAILABLE", "the physical disk is not available"),
    (226, "NET_DVR_ARRAY_NOT_AVAILABLE", "the array is not available"),
    (227, "NET_DVR_PD_COUNT", "wrong number of physical disks"),
    (228, "NET_DVR_VD_SMALL", "the virtual disk is too small"),
    (229, "NET_DVR_NO_EXIST", "does not exist"),
    (230, "NET_DVR_NOT_SUPPORT", "the operation is not supported"),
    (231, "NET_DVR_NOT_FUNCTIONAL", "the array is not in a normal state"),
    (232, "NET_DVR_DEV_NODE_NOT_FOUND", "the virtual disk's device node does not exist"),
    (233, "NET_DVR_SLOT_EXCEED", "the maximum number of slots is reached"),
    (234, "NET_DVR_NO_VD_IN_ARRAY", "the array has no virtual disk"),
    (235, "NET_DVR_VD_SLOT_INVALID", "invalid virtual disk slot"),
    (236, "NET_DVR_PD_NO_ENOUGH_SPACE", "the physical disks do not have enough space"),
    (237, "NET_DVR_ARRAY_NONFUNCTION", "only an array in a normal state can be migrated"),
    (238, "NET_DVR_ARRAY_NO_ENOUGH_SPACE", "the array does not have enough space"),
    (239, "NET_DVR_STOPPING_SCANNING_ARRAY", "a safe disk removal or rescan is in progress"),
    (240, "NET_DVR_NOT_SUPPORT_16T", "arrays larger than 16 TB are not supported"),
    # activation
    (
        250,
        "NET_DVR_ERROR_DEVICE_NOT_ACTIVATED",
        "the device is not activated (set its admin password first)",
    ),
    (251, "NET_DVR_ERROR_RISK_PASSWORD", "the password is too weak (risky password)"),
    (252, "NET_DVR_ERROR_DEVICE_HAS_ACTIVATED", "the device is already activated"),
    (800, "NET_DVR_DEV_NET_OVERFLOW", "network traffic exceeds the device's capacity"),
    (
        801,
        "NET_DVR_STATUS_RECORDFILE_WRITING_NOT_LOCK",
        "the recording is still being written and cannot be locked",
    ),
    (802, "NET_DVR_STATUS_CANT_FORMAT_LITTLE_DISK", "the disk is too small to format"),
    # N+1 (hot spare) errors
    (803, "NET_SDK_ERR_REMOTE_DISCONNEC", "the remote side cannot be reached"),
    (804, "NET_SDK_ERR_RD_ADD_RD", "a spare cannot add a spare"),
    (805, "NET_SDK_ERR_BACKUP_DISK_EXCEPT", "the backup disk has an error"),
    (806, "NET_SDK_ERR_RD_LIMIT", "the maximum number of spares is reached"),
    (807, "NET_SDK_ERR_ADDED_RD_IS_WD", "the spare being added is a working machine"),
    (
        808,
        "NET_SDK_ERR_ADD_ORDER_WRONG",
        "wrong order of adding (the working machine must add the spare first)",
    ),
    (809, "NET_SDK_ERR_WD_ADD_WD", "a working machine cannot add a working machine"),
    (810, "NET_SDK_ERR_WD_SERVICE_EXCETP", "the working machine's CVR service has an error"),
    (811, "NET_SDK_ERR_RD_SERVICE_EXCETP", "the spare's CVR service has an error"),
    (812, "NET_SDK_ERR_ADDED_WD_IS_RD", "the working machine being added is a spare"),
    (813, "NET_SDK_ERR_PERFORMANCE_LIMIT", "the performance limit is reached"),
    (814, "NET_SDK_ERR_ADDED_DEVICE_EXIST", "the device being added already exists"),
    (
        821,
        "NET_SDK_ERR_CHAN_AUDIO_BIND",
        "the channel is not bound to audio, or binding two-way audio failed",
    ),
    (822, "NET_DVR_N_PLUS_ONE_MODE", "the device is in N+1 mode and cannot use cloud storage"),
    (823, "NET_DVR_CLOUD_STORAGE_OPENED", "cloud storage mode is already on"),
    (834, "NET_DVR_CHECK_PASSWORD_MISTAKE_ERROR", "the password check failed"),
    # decoder errors
    (943, "NET_ERR_WINDOW_SIZE_OVERLIMIT", "the window size exceeds the limit"),
    (951, "NET_ERR_MAX_WIN_OVERLAP", "the maximum number of overlapping windows is reached"),
    (952, "NET_ERR_STREAMID_CHAN_BOTH_VALID", "stream ID and channel number are both set"),
    (975, "NET_DVR_ERR_WINDOW_SIZE_PLACE", "wrong window position"),
    (976, "NET_DVR_ERR_RGIONAL_RESTRICTIONS", "the screen distance exceeds the limit"),
    (984, "NET_DVR_ERR_CLOSE_WINDOWS", "close the window first"),
    (985, "NET_DVR_ERR_MATRIX_LOOP_ABILITY", "beyond the decoder's cycling capability"),
    (986, "NET_DVR_ERR_MATRIX_LOOP_TIME", "the cycling decode time is not supported"),
    (987, "NET_DVR_ERR_LINKED_OUT_ABILITY", "too many linked channels"),
    # capability (XML) errors; note 1000-1004 are also FindNext* status values
    (1000, "XML_ABILITY_NOTSUPPORT", "getting this capability is not supported"),
    (1001, "XML_ANALYZE_NOENOUGH_BUF", "not enough output memory for the capability XML"),
    (1002, "XML_ANALYZE_FIND_LOCALXML_ERROR", "the matching local capability XML was not found"),
    (1003, "XML_ANALYZE_LOAD_LOCALXML_ERROR", "could not load the local capability XML"),
    (1004, "XML_NANLYZE_DVR_DATA_FORMAT_ERROR", "the device's capability data has a wrong format"),
    (1005, "XML_ANALYZE_TYPE_ERROR", "wrong capability type"),
    (1006, "XML_ANALYZE_XML_NODE_ERROR", "wrong capability XML node format"),
    (1007, "XML_INPUT_PARAM_ERROR", "wrong capability XML node value"),
    (1008, "XML_VERSION_MISMATCH", "the XML version does not match"),
    # VQD errors
    (1500, "NET_ERR_VQD_TIME_CONFLICT", "VQD diagnosis time periods overlap"),
    (1501, "NET_ERR_VQD_PLAN_NO_EXIST", "the VQD diagnosis plan does not exist"),
    (1502, "NET_ERR_VQD_CHAN_NO_EXIST", "the VQD monitoring point does not exist"),
    (1503, "NET_ERR_VQD_CHAN_MAX", "the maximum number of VQD plans is reached"),
    (1504, "NET_ERR_VQD_TASK_MAX", "the maximum number of VQD tasks is reached"),
    # other errors
    (2100, "NET_DVR_ERR_FILE_NOT_COMPLETE", "the downloaded file is incomplete"),
    (2101, "NET_DVR_ERR_IPC_EXIST", "the IP camera is already added"),
    (2102, "NET_DVR_ERR_ADD_IPC", "the channel already has an IP camera"),
    (2103, "NET_DVR_ERR_OUT_OF_RES", "not enough network bandwidth"),
    (
        2104,
        "NET_DVR_ERR_CONFLICT_TO_LOCALIP",
        "the IP camera's address conflicts with the recorder's",
    ),
    (2105, "NET_DVR_ERR_IP_SET", "invalid IP address"),
    (2106, "NET_DVR_ERR_PORT_SET", "invalid port number"),
    (2108, "NET_ERR_MUTEX_FUNCTION", "the function conflicts with another enabled function"),
    # 6.2 RTSP library
    (401, "NET_DVR_RTSP_ERROR_NOENOUGHPRI", "RTSP: no permission (the server answered 401)"),
    (402, "NET_DVR_RTSP_ERROR_ALLOC_RESOURCE", "RTSP: could not allocate a resource"),
    (403, "NET_DVR_RTSP_ERROR_PARAMETER", "RTSP: invalid parameter"),
    (404, "NET_DVR_RTSP_ERROR_NO_URL", "RTSP: the URL does not exist (the server answered 404)"),
    (406, "NET_DVR_RTSP_ERROR_FORCE_STOP", "RTSP: stopped by the user"),
    (407, "NET_DVR_RTSP_GETPORTFAILED", "RTSP: could not get the RTSP port"),
    (410, "NET_DVR_RTSP_DESCRIBERROR", "RTSP DESCRIBE failed"),
    (411, "NET_DVR_RTSP_DESCRIBESENDTIMEOUT", "RTSP DESCRIBE send timed out"),
    (412, "NET_DVR_RTSP_DESCRIBESENDERROR", "RTSP DESCRIBE send failed"),
    (413, "NET_DVR_RTSP_DESCRIBERECVTIMEOUT", "RTSP DESCRIBE receive timed out"),
    (414, "NET_DVR_RTSP_DESCRIBERECVDATALOST", "RTSP DESCRIBE received bad data"),
    (415, "NET_DVR_RTSP_DESCRIBERECVERROR", "RTSP DESCRIBE receive failed"),
    (
        416,
        "NET_DVR_RTSP_DESCRIBESERVERERR",
        "RTSP DESCRIBE: the server returned an error (e.g. 400: no sub-stream)",
    ),
    (420, "NET_DVR_RTSP_SETUPERROR", "RTSP SETUP failed (stream address unreachable or refused)"),
    (421, "NET_DVR_RTSP_SETUPSENDTIMEOUT", "RTSP SETUP send timed out"),
    (422, "NET_DVR_RTSP_SETUPSENDERROR", "RTSP SETUP send failed"),
    (423, "NET_DVR_RTSP_SETUPRECVTIMEOUT", "RTSP SETUP receive timed out"),
    (424, "NET_DVR_RTSP_SETUPRECVDATALOST", "RTSP SETUP received bad data"),
    (425, "NET_DVR_RTSP_SETUPRECVERROR", "RTSP SETUP receive failed"),
    (426, "NET_DVR_RTSP_OVER_MAX_CHAN", "RTSP: the server's connection limit is reached (453)"),
    (427, "NET_DVR_RTSP_SETUPSERVERERR", "RTSP SETUP: the server returned an error"),
    (430, "NET_DVR_RTSP_PLAYERROR", "RTSP PLAY failed"),
    (431, "NET_DVR_RTSP_PLAYSENDTIMEOUT", "RTSP PLAY send timed out"),
    (432, "NET_DVR_RTSP_PLAYSENDERROR", "RTSP PLAY send failed"),
    (433, "NET_DVR_RTSP_PLAYRECVTIMEOUT", "RTSP PLAY receive timed out"),
    (434, "NET_DVR_RTSP_PLAYRECVDATALOST", "RTSP PLAY received bad data"),
    (435, "NET_DVR_RTSP_PLAYRECVERROR", "RTSP PLAY receive failed"),
    (436, "NET_DVR_RTSP_PLAYSERVERERR", "RTSP PLAY: the server returned an error"),
    (440, "NET_DVR_RTSP_TEARDOWNERROR", "RTSP TEARDOWN failed"),
    (441, "NET_DVR_RTSP_TEARDOWNSENDTIMEOUT", "RTSP TEARDOWN send timed out"),
    (442, "NET_DVR_RTSP_TEARDOWNSENDERROR", "RTSP TEARDOWN send failed"),
    (443, "NET_DVR_RTSP_TEARDOWNRECVTIMEOUT", "RTSP TEARDOWN receive timed out"),
    (444, "NET_DVR_RTSP_TEARDOWNRECVDATALOST", "RTSP TEARDOWN received bad data"),
    (445, "NET_DVR_RTSP_TEARDOWNRECVERROR", "RTSP TEARDOWN receive failed"),
    (446, "NET_DVR_RTSP_TEARDOWNSERVERERR", "RTSP TEARDOWN: the server returned an error"),
    # 6.3 software decoder (PlayM4)
    (500, "NET_PLAYM4_NOERROR", "player: no error"),
    (501, "NET_PLAYM4_PARA_OVER", "player: invalid parameter"),
    (502, "NET_PLAYM4_ORDER_ERROR", "player: calls in the wrong order"),
    (503, "NET_PLAYM4_TIMER_ERROR", "player: could not set the multimedia clock"),
    (504, "NET_PLAYM4_DEC_VIDEO_ERROR", "player: video decoding failed"),
    (505, "NET_PLAYM4_DEC_AUDIO_ERROR", "player: audio decoding failed"),
    (506, "NET_PLAYM4_ALLOC_MEMORY_ERROR", "player: out of memory"),
    (507, "NET_PLAYM4_OPEN_FILE_ERROR", "player: file operation failed"),
    (508, "NET_PLAYM4_CREATE_OBJ_ERROR", "player: could not create a thread or event"),
    (509, "NET_PLAYM4_CREATE_DDRAW_ERROR", "player: could not create DirectDraw"),
    (510, "NET_PLAYM4_CREATE_OFFSCREEN_ERROR", "player: could not create the back buffer"),
    (511, "NET_PLAYM4_BUF_OVER", "player: buffer full, input failed"),
    (512, "NET_PLAYM4_CREATE_SOUND_ERROR", "player: could not create the audio device"),
    (513, "NET_PLAYM4_SET_VOLUME_ERROR", "player: could not set the volume"),
    (514, "NET_PLAYM4_SUPPORT_FILE_ONLY", "player: only available when playing a file"),
    (515, "NET_PLAYM4_SUPPORT_STREAM_ONLY", "player: only available when playing a stream"),
    (516, "NET_PLAYM4_SYS_NOT_SUPPORT", "player: the system is not supported"),
    (517, "NET_PLAYM4_FILEHEADER_UNKNOWN", "player: no file header"),
    (518, "NET_PLAYM4_VERSION_INCORRECT", "player: decoder and encoder versions do not match"),
    (519, "NET_PALYM4_INIT_DECODER_ERROR", "player: could not initialise the decoder"),
    (
        520,
        "NET_PLAYM4_CHECK_FILE_ERROR",
        "player: the file is too short or the stream is not recognised",
    ),
    (521, "NET_PLAYM4_INIT_TIMER_ERROR", "player: could not initialise the multimedia clock"),
    (522, "NET_PLAYM4_BLT_ERROR", "player: bit block transfer failed"),
    (523, "NET_PLAYM4_UPDATE_ERROR", "player: could not display the overlay"),
    (524, "NET_PLAYM4_OPEN_FILE_ERROR_MULTI", "player: could not open the multiplexed stream file"),
    (525, "NET_PLAYM4_OPEN_FILE_ERROR_VIDEO", "player: could not open the video stream file"),
    (526, "NET_PLAYM4_JPEG_COMPRESS_ERROR", "player: JPEG compression failed"),
    (527, "NET_PLAYM4_EXTRACT_NOT_SUPPORT", "player: this file version is not supported"),
    (528, "NET_PLAYM4_EXTRACT_DATA_ERROR", "player: could not extract the file data"),
    # 6.4 audio intercom library
    (600, "NET_AUDIOINTERCOM_OK", "audio: no error"),
    (601, "NET_AUDIOINTECOM_ERR_NOTSUPORT", "audio: not supported"),
    (602, "NET_AUDIOINTECOM_ERR_ALLOC_MEMERY", "audio: out of memory"),
    (603, "NET_AUDIOINTECOM_ERR_PARAMETER", "audio: invalid parameter"),
    (604, "NET_AUDIOINTECOM_ERR_CALL_ORDER", "audio: calls in the wrong order"),
    (605, "NET_AUDIOINTECOM_ERR_FIND_DEVICE", "audio: no audio device found"),
    (606, "NET_AUDIOINTECOM_ERR_OPEN_DEVICE", "audio: could not open the audio device"),
    (607, "NET_AUDIOINTECOM_ERR_NO_CONTEXT", "audio: device context error"),
    (608, "NET_AUDIOINTECOM_ERR_NO_WAVFILE", "audio: WAV file error"),
    (609, "NET_AUDIOINTECOM_ERR_INVALID_TYPE", "audio: invalid WAV parameter type"),
    (610, "NET_AUDIOINTECOM_ERR_ENCODE_FAIL", "audio: encoding failed"),
    (611, "NET_AUDIOINTECOM_ERR_DECODE_FAIL", "audio: decoding failed"),
    (612, "NET_AUDIOINTECOM_ERR_NO_PLAYBACK", "audio: playback failed"),
    (613, "NET_AUDIOINTECOM_ERR_DENOISE_FAIL", "audio: noise reduction failed"),
    (619, "NET_AUDIOINTECOM_ERR_UNKOWN", "audio: unknown error"),
)

ERROR_NAMES: dict[int, str] = {code: name for code, name, _ in _ERRORS}
"""Error code -> the vendor's macro name (NET_DVR_PASSWORD_ERROR, ...)."""
ERROR_MESSAGES: dict[int, str] = {code: message for code, _, message in _ERRORS}
"""Error code -> what it means, in English."""


# ---- log types (guide 6.5) -----------------------------------------------------------
# dwMajorType / dwMinorType of NET_DVR_LOG_V30. hikd names a type after its macro without
# the MAJOR_/MINOR_ prefix, in lower case: MINOR_REMOTE_LOGIN -> "remote_login". Minor
# values repeat across majors (0x41 is "record_overflow" under exceptions and "start_dvr"
# under operations), so minors are looked up per major.

_LOG_MAJORS: tuple[tuple[int, str], ...] = (
    (1, "MAJOR_ALARM"),
    (2, "MAJOR_EXCEPTION"),
    (3, "MAJOR_OPERATION"),
    (4, "MAJOR_INFORMATION"),
    (5, "MAJOR_EVENT"),  # V6 header only
)

# The guide's tables 6.2-6.5; values checked against the header by the tests. (The
# guide lists 0x96 as a second MINOR_REMOTE_SET_NAS; the header's name is
# MINOR_REMOTE_PIC_OUTPUT.)
_LOG_MINORS: dict[int, tuple[tuple[int, str], ...]] = {
    1: (  # MAJOR_ALARM
        (0x01, "MINOR_ALARM_IN"),
        (0x02, "MINOR_ALARM_OUT"),
        (0x03, "MINOR_MOTDET_START"),
        (0x04, "MINOR_MOTDET_STOP"),
        (0x05, "MINOR_HIDE_ALARM_START"),
        (0x06, "MINOR_HIDE_ALARM_STOP"),
        (0x07, "MINOR_VCA_ALARM_START"),
        (0x08, "MINOR_VCA_ALARM_STOP"),
        (0x09, "MINOR_ITS_ALARM_START"),
        (0x0A, "MINOR_ITS_ALARM_STOP"),
        (0x0B, "MINOR_NETALARM_START"),
        (0x0C, "MINOR_NETALARM_STOP"),
        (0x0D, "MINOR_NETALARM_RESUME"),
    ),
    2: (  # MAJOR_EXCEPTION
        (0x20, "MINOR_RAID_ERROR"),
        (0x21, "MINOR_VI_LOST"),
        (0x22, "MINOR_ILLEGAL_ACCESS"),
        (0x23, "MINOR_HD_FULL"),
        (0x24, "MINOR_HD_ERROR"),
        (0x25, "MINOR_DCD_LOST"),
        (0x26, "MINOR_IP_CONFLICT"),
        (0x27, "MINOR_NET_BROKEN"),
        (0x28, "MINOR_REC_ERROR"),
        (0x29, "MINOR_IPC_NO_LINK"),
        (0x2A, "MINOR_VI_EXCEPTION"),
        (0x2B, "MINOR_IPC_IP_CONFLICT"),
        (0x2C, "MINOR_SENCE_EXCEPTION"),
        (0x2D, "MINOR_PIC_REC_ERROR"),
        (0x2E, "MINOR_VI_MISMATCH"),
        (0x41, "MINOR_RECORD_OVERFLOW"),
        (0x42, "MINOR_DSP_ABNORMAL"),
        (0x43, "MINOR_ANR_RECORD_FAIED"),
        (0x44, "MINOR_SPARE_WORK_DEVICE_EXCEPT"),
        (0x45, "MINOR_START_IPC_MAS_FAILED"),
        (0x46, "MINOR_IPCM_CRASH"),
        (0x47, "MINOR_POE_POWER_EXCEPTION"),
        (0x48, "MINOR_UPLOAD_DATA_CS_EXCEPTION"),
        (0x53, "MINOR_SYNC_IPC_PASSWD"),
        (0x54, "MINOR_EZVIZ_OFFLINE"),
        (0x57, "MINOR_ACCESSORIES_PLATE"),
    ),
    3: (  # MAJOR_OPERATION
        (0x41, "MINOR_START_DVR"),
        (0x42, "MINOR_STOP_DVR"),
        (0x43, "MINOR_STOP_ABNORMAL"),
        (0x44, "MINOR_REBOOT_DVR"),
        (0x50, "MINOR_LOCAL_LOGIN"),
        (0x51, "MINOR_LOCAL_LOGOUT"),
        (0x52, "MINOR_LOCAL_CFG_PARM"),
        (0x53, "MINOR_LOCAL_PLAYBYFILE"),
        (0x54, "MINOR_LOCAL_PLAYBYTIME"),
        (0x55, "MINOR_LOCAL_START_REC"),
        (0x56, "MINOR_LOCAL_STOP_REC"),
        (0x57, "MINOR_LOCAL_PTZCTRL"),
        (0x58, "MINOR_LOCAL_PREVIEW"),
        (0x59, "MINOR_LOCAL_MODIFY_TIME"),
        (0x5A, "MINOR_LOCAL_UPGRADE"),
        (0x5B, "MINOR_LOCAL_RECFILE_OUTPUT"),
        (0x5C, "MINOR_LOCAL_FORMAT_HDD"),
        (0x5D, "MINOR_LOCAL_CFGFILE_OUTPUT"),
        (0x5E, "MINOR_LOCAL_CFGFILE_INPUT"),
        (0x5F, "MINOR_LOCAL_COPYFILE"),
        (0x60, "MINOR_LOCAL_LOCKFILE"),
        (0x61, "MINOR_LOCAL_UNLOCKFILE"),
        (0x62, "MINOR_LOCAL_DVR_ALARM"),
        (0x63, "MINOR_IPC_ADD"),
        (0x64, "MINOR_IPC_DEL"),
        (0x65, "MINOR_IPC_SET"),
        (0x66, "MINOR_LOCAL_START_BACKUP"),
        (0x67, "MINOR_LOCAL_STOP_BACKUP"),
        (0x68, "MINOR_LOCAL_COPYFILE_START_TIME"),
        (0x69, "MINOR_LOCAL_COPYFILE_END_TIME"),
        (0x6A, "MINOR_LOCAL_ADD_NAS"),
        (0x6B, "MINOR_LOCAL_DEL_NAS"),
        (0x6C, "MINOR_LOCAL_SET_NAS"),
        (0x70, "MINOR_REMOTE_LOGIN"),
        (0x71, "MINOR_REMOTE_LOGOUT"),
        (0x72, "MINOR_REMOTE_START_REC"),
        (0x73, "MINOR_REMOTE_STOP_REC"),
        (0x74, "MINOR_START_TRANS_CHAN"),
        (0x75, "MINOR_STOP_TRANS_CHAN"),
        (0x76, "MINOR_REMOTE_GET_PARM"),
        (0x77, "MINOR_REMOTE_CFG_PARM"),
        (0x78, "MINOR_REMOTE_GET_STATUS"),
        (0x79, "MINOR_REMOTE_ARM"),
        (0x7A, "MINOR_REMOTE_DISARM"),
        (0x7B, "MINOR_REMOTE_REBOOT"),
        (0x7C, "MINOR_START_VT"),
        (0x7D, "MINOR_STOP_VT"),
        (0x7E, "MINOR_REMOTE_UPGRADE"),
        (0x7F, "MINOR_REMOTE_PLAYBYFILE"),
        (0x80, "MINOR_REMOTE_PLAYBYTIME"),
        (0x81, "MINOR_REMOTE_PTZCTRL"),
        (0x82, "MINOR_REMOTE_FORMAT_HDD"),
        (0x83, "MINOR_REMOTE_STOP"),
        (0x84, "MINOR_REMOTE_LOCKFILE"),
        (0x85, "MINOR_REMOTE_UNLOCKFILE"),
        (0x86, "MINOR_REMOTE_CFGFILE_OUTPUT"),
        (0x87, "MINOR_REMOTE_CFGFILE_INTPUT"),
        (0x88, "MINOR_REMOTE_RECFILE_OUTPUT"),
        (0x89, "MINOR_REMOTE_DVR_ALARM"),
        (0x8A, "MINOR_REMOTE_IPC_ADD"),
        (0x8B, "MINOR_REMOTE_IPC_DEL"),
        (0x8C, "MINOR_REMOTE_IPC_SET"),
        (0x8D, "MINOR_REBOOT_VCA_LIB"),
        (0x8E, "MINOR_REMOTE_ADD_NAS"),
        (0x8F, "MINOR_REMOTE_DEL_NAS"),
        (0x90, "MINOR_REMOTE_SET_NAS"),
        (0x91, "MINOR_LOCAL_START_REC_CDRW"),
        (0x92, "MINOR_LOCAL_STOP_REC_CDRW"),
        (0x93, "MINOR_REMOTE_START_REC_CDRW"),
        (0x94, "MINOR_REMOTE_STOP_REC_CDRW"),
        (0x95, "MINOR_LOCAL_PIC_OUTPUT"),
        (0x96, "MINOR_REMOTE_PIC_OUTPUT"),
        (0x97, "MINOR_LOCAL_INQUEST_RESUME"),
        (0x98, "MINOR_REMOTE_INQUEST_RESUME"),
        (0x99, "MINOR_LOCAL_ADD_FILE"),
        (0x9A, "MINOR_REMOTE_DELETE_HDISK"),
        (0x9B, "MINOR_REMOTE_LOAD_HDISK"),
        (0x9C, "MINOR_REMOTE_UNLOAD_HDISK"),
        (0x9D, "MINOR_LOCAL_OPERATE_LOCK"),
        (0x9E, "MINOR_LOCAL_OPERATE_UNLOCK"),
        (0xD0, "MINOR_REMOTE_BYPASS"),
        (0xD1, "MINOR_REMOTE_UNBYPASS"),
        (0xD2, "MINOR_REMOTE_SET_ALARMIN_CFG"),
        (0xD3, "MINOR_REMOTE_GET_ALARMIN_CFG"),
        (0xD4, "MINOR_REMOTE_SET_ALARMOUT_CFG"),
        (0xD5, "MINOR_REMOTE_GET_ALARMOUT_CFG"),
        (0xD6, "MINOR_REMOTE_ALARMOUT_OPEN_MAN"),
        (0xD7, "MINOR_REMOTE_ALARMOUT_CLOSE_MAN"),
        (0xD8, "MINOR_REMOTE_ALARM_ENABLE_CFG"),
        (0xD9, "MINOR_DBDATA_OUTPUT"),
        (0xDA, "MINOR_DBDATA_INPUT"),
        (0xDB, "MINOR_MU_SWITCH"),
        (0xDC, "MINOR_MU_PTZ"),
        (0x101, "MINOR_LOCAL_CONF_REB_RAID"),
        (0x102, "MINOR_LOCAL_CONF_SPARE"),
        (0x103, "MINOR_LOCAL_ADD_RAID"),
        (0x104, "MINOR_LOCAL_DEL_RAID"),
        (0x105, "MINOR_LOCAL_MIG_RAID"),
        (0x106, "MINOR_LOCAL_REB_RAID"),
        (0x107, "MINOR_LOCAL_QUICK_CONF_RAID"),
        (0x108, "MINOR_LOCAL_ADD_VD"),
        (0x109, "MINOR_LOCAL_DEL_VD"),
        (0x10A, "MINOR_LOCAL_RP_VD"),
        (0x10B, "MINOR_LOCAL_FORMAT_EXPANDVD"),
        (0x10C, "MINOR_LOCAL_RAID_UPGRADE"),
        (0x10D, "MINOR_LOCAL_STOP_RAID"),
        (0x111, "MINOR_REMOTE_CONF_REB_RAID"),
        (0x112, "MINOR_REMOTE_CONF_SPARE"),
        (0x113, "MINOR_REMOTE_ADD_RAID"),
        (0x114, "MINOR_REMOTE_DEL_RAID"),
        (0x115, "MINOR_REMOTE_MIG_RAID"),
        (0x116, "MINOR_REMOTE_REB_RAID"),
        (0x117, "MINOR_REMOTE_QUICK_CONF_RAID"),
        (0x118, "MINOR_REMOTE_ADD_VD"),
        (0x119, "MINOR_REMOTE_DEL_VD"),
        (0x11A, "MINOR_REMOTE_RP_VD"),
        (0x11B, "MINOR_REMOTE_FORMAT_EXPANDVD"),
        (0x11C, "MINOR_REMOTE_RAID_UPGRADE"),
        (0x11D, "MINOR_REMOTE_STOP_RAID"),
        (0x121, "MINOR_LOCAL_START_PIC_REC"),
        (0x122, "MINOR_LOCAL_STOP_PIC_REC"),
        (0x125, "MINOR_LOCAL_SET_SNMP"),
        (0x126, "MINOR_LOCAL_TAG_OPT"),
        (0x131, "MINOR_REMOTE_START_PIC_REC"),
        (0x132, "MINOR_REMOTE_STOP_PIC_REC"),
        (0x135, "MINOR_REMOTE_SET_SNMP"),
        (0x136, "MINOR_REMOTE_TAG_OPT"),
        (0x140, "MINOR_LOCAL_VOUT_SWITCH"),
        (0x141, "MINOR_STREAM_CABAC"),
        (0x142, "MINOR_LOCAL_SPARE_OPT"),
        (0x143, "MINOR_REMOTE_SPARE_OPT"),
        (0x144, "MINOR_LOCAL_IPCCFGFILE_OUTPUT"),
        (0x145, "MINOR_LOCAL_IPCCFGFILE_INPUT"),
        (0x146, "MINOR_LOCAL_IPC_UPGRADE"),
        (0x147, "MINOR_REMOTE_IPCCFGFILE_OUTPUT"),
        (0x148, "MINOR_REMOTE_IPCCFGFILE_INPUT"),
        (0x149, "MINOR_REMOTE_IPC_UPGRADE"),
        (0x300, "MINOR_LOCAL_LOAD_HDISK"),
        (0x301, "MINOR_LOCAL_DELETE_HDISK"),
        (0x211C, "MINOR_REMOTE_CREATE_STORAGE_POOL"),
        (0x211D, "MINOR_REMOTE_DEL_STORAGE_POOL"),
        (0x2120, "MINOR_REMOTE_DEL_PIC"),
        (0x2121, "MINOR_REMOTE_DEL_RECORD"),
        (0x2123, "MINOR_REMOTE_CLOUD_ENABLE"),
        (0x2124, "MINOR_REMOTE_CLOUD_DISABLE"),
        (0x2125, "MINOR_REMOTE_CLOUD_MODIFY_PARAM"),
        (0x2126, "MINOR_REMOTE_CLOUD_MODIFY_VOLUME"),
    ),
    4: (  # MAJOR_INFORMATION
        (0xA1, "MINOR_HDD_INFO"),
        (0xA2, "MINOR_SMART_INFO"),
        (0xA3, "MINOR_REC_START"),
        (0xA4, "MINOR_REC_STOP"),
        (0xA5, "MINOR_REC_OVERDUE"),
        (0xA6, "MINOR_LINK_START"),
        (0xA7, "MINOR_LINK_STOP"),
        (0xA8, "MINOR_NET_DISK_INFO"),
        (0xA9, "MINOR_RAID_INFO"),
    ),
}


def _log_name(macro: str) -> str:
    return macro.split("_", 1)[1].lower()


LOG_MAJOR_MACROS: dict[int, str] = dict(_LOG_MAJORS)
LOG_MINOR_MACROS: dict[int, dict[int, str]] = {
    major: dict(minors) for major, minors in _LOG_MINORS.items()
}
LOG_MAJOR_TYPES: dict[int, str] = {v: _log_name(m) for v, m in _LOG_MAJORS}
"""dwMajorType -> name: 1 "alarm", 2 "exception", 3 "operation", 4 "information"."""
LOG_MINOR_TYPES: dict[int, dict[int, str]] = {
    major: {v: _log_name(m) for v, m in minors} for major, minors in _LOG_MINORS.items()
}
"""dwMajorType -> dwMinorType -> name, e.g. LOG_MINOR_TYPES[3][0x70] == "remote_login"."""


def log_type_names(major: int, minor: int) -> tuple[str, str]:
    """Names for a log entry's major and minor type; unknown ones as "major_0x5"/"minor_0x1f"."""
    major_name = LOG_MAJOR_TYPES.get(major, f"major_{major:#x}")
    minor_name = LOG_MINOR_TYPES.get(major, {}).get(minor, f"minor_{minor:#x}")
    return major_name, minor_name
