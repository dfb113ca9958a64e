"""SDK error codes (guide chapter 6) -> exceptions, and the device log types (guide 6.5)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from hikd.errors import UserError
from hikd.sdk import errors
from hikd.sdk.errors import (
    AuthError,
    BufferTooSmallError,
    DeviceBusyError,
    LibraryError,
    ListenError,
    LocalFileError,
    NetworkError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    SdkError,
    SessionExpiredError,
    error_class,
    error_for,
    log_type_names,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
HEADER = json.loads((FIXTURES / "abi_constants.json").read_text())

# Every code the guide's chapter 6 lists (6.1 incl. RAID, activation, N+1, decoder,
# capability, VQD and other codes; 6.2 RTSP; 6.3 soft decoder; 6.4 audio intercom).
CHAPTER_6 = (
    list(range(0, 98))
    + list(range(100, 114))
    + list(range(121, 129))
    + list(range(136, 143))
    + [150, 152, 153, 154, 155, 156, 157, 165, 800, 801, 802, 821, 822, 823, 834]
    + list(range(200, 241))
    + [250, 251, 252]
    + list(range(803, 815))
    + [943, 951, 952, 975, 976, 984, 985, 986, 987]
    + list(range(1000, 1009))
    + list(range(1500, 1505))
    + [2100, 2101, 2102, 2103, 2104, 2105, 2106, 2108]
    + [401, 402, 403, 404, 406, 407]
    + [410, 411, 412, 413, 414, 415, 416, 420, 421, 422, 423, 424, 425, 426, 427]
    + [430, 431, 432, 433, 434, 435, 436, 440, 441, 442, 443, 444, 445, 446]
    + list(range(500, 529))
    + list(range(600, 614))
    + [619]
)


@pytest.mark.parametrize("code", CHAPTER_6)
def test_every_chapter_6_code_has_a_name_and_an_english_message(code: int) -> None:
    message = errors.ERROR_MESSAGES[code]
    assert message and message.isascii() and "\n" not in message
    assert errors.ERROR_NAMES[code]
    assert error_for(code).message == message


def test_codes_the_v6_library_returns_beyond_the_guide() -> None:
    # 189 is what the real library answers to private-protocol calls on an ISAPI login.
    assert errors.ERROR_NAMES[189] == "NET_DVR_ISAPI_NOT_SUPPORT"
    assert "ISAPI" in errors.ERROR_MESSAGES[189]


def test_error_names_have_the_headers_values() -> None:
    from_header = HEADER["error_codes"]
    assert len(from_header) > 200
    assert {name: errors.ERROR_NAMES[value] for name, value in from_header.items()} == {
        name: name for name in from_header
    }
    assert from_header["NET_DVR_USER_LOCKED"] == 153


@pytest.mark.parametrize(
    ("codes", "family"),
    [
        ((1, 152, 153, 250, 251, 252), AuthError),
        ((7, 8, 9, 10, 14, 73, 413, 433), NetworkError),
        ((23, 91, 189), NotSupportedError),
        ((43, 1001), BufferTooSmallError),
        ((5, 24, 52, 90), DeviceBusyError),
        ((2, 13), PermissionDeniedError),
        ((47, 154), SessionExpiredError),
        ((4, 33, 404), NotFoundError),
        ((34, 77), LocalFileError),
        ((72, 75), ListenError),
        ((84, 107, 121, 136, 156), LibraryError),
    ],
)
def test_families(codes: tuple[int, ...], family: type[SdkError]) -> None:
    for code in codes:
        error = error_for(code)
        assert type(error) is family, code
        assert error_class(code) is family
        assert error.code == code


def test_what_callers_decide_from_the_class() -> None:
    assert NetworkError.transient and DeviceBusyError.transient
    assert not AuthError.transient and not SdkError.transient
    assert not NotSupportedError.transient
    # Errors a user must fix end in one line, like every UserError.
    for cls in (AuthError, PermissionDeniedError, LocalFileError, ListenError, LibraryError):
        assert issubclass(cls, UserError)
    assert not issubclass(NetworkError, UserError)


def test_families_do_not_overlap() -> None:
    seen: dict[int, type[SdkError]] = {}
    for cls, codes in errors._FAMILIES:
        for code in codes:
            assert code not in seen, f"{code} in {seen.get(code)} and {cls}"
            seen[code] = cls
    assert set(seen) <= set(errors.ERROR_NAMES)


@pytest.mark.parametrize("code", [99999, -1, 2107])
def test_unknown_code(code: int) -> None:
    error = error_for(code, "vendor text")
    assert type(error) is SdkError
    assert error.message == f"unknown SDK error {code}"
    assert error.vendor_message == "vendor text"
    assert str(error) == f"unknown SDK error {code} (SDK error {code})"


def test_message_line_and_attributes() -> None:
    error = error_for(153, "user locked")
    assert str(error) == (
        "the user is locked on the device after too many wrong passwords"
        " (SDK error 153 NET_DVR_USER_LOCKED)"
    )
    assert error.name == "NET_DVR_USER_LOCKED"
    assert error.vendor_message == "user locked"
    assert error.detail == "" and error.login_details is None
    error.detail = "<ResponseStatus/>"
    assert "<ResponseStatus/>" not in str(error)


def test_caller_made_error_keeps_its_message() -> None:
    error = SdkError(3, "not logged in")
    assert error.message == "not logged in"
    assert str(error) == "not logged in (SDK error 3 NET_DVR_NOINIT)"


def test_errors_survive_pickling() -> None:
    # Errors cross thread and process boundaries (e.g. in futures): they must rebuild.
    error = pickle.loads(pickle.dumps(error_for(1)))
    assert type(error) is AuthError and error.code == 1
    assert str(error) == str(error_for(1))


def test_log_types_have_the_headers_values() -> None:
    from_header = HEADER["log_types"]
    ours = {name: value for value, name in errors.LOG_MAJOR_MACROS.items()}
    for minors in errors.LOG_MINOR_MACROS.values():
        ours.update({name: value for value, name in minors.items()})
    assert {name: ours[name] for name in from_header} == from_header
    assert len(from_header) == len(ours)


def test_log_type_names() -> None:
    assert errors.LOG_MAJOR_TYPES == {
        1: "alarm",
        2: "exception",
        3: "operation",
        4: "information",
        5: "event",
    }
    # The mappings the library made from ISAPI log metaIds (sdk-over-isapi.md, part 2 §e).
    assert log_type_names(0x3, 0x70) == ("operation", "remote_login")
    assert log_type_names(0x3, 0x71) == ("operation", "remote_logout")
    assert log_type_names(0x2, 0x21) == ("exception", "vi_lost")
    assert log_type_names(0x1, 0x3) == ("alarm", "motdet_start")
    assert log_type_names(0x4, 0xA1) == ("information", "hdd_info")
    # The same minor value means different things under different majors.
    assert log_type_names(0x2, 0x41) == ("exception", "record_overflow")
    assert log_type_names(0x3, 0x41) == ("operation", "start_dvr")
    assert log_type_names(0x3, 0x96) == ("operation", "remote_pic_output")


def test_unknown_log_types() -> None:
    assert log_type_names(0x4, 0x0) == ("information", "minor_0x0")
    assert log_type_names(9, 0x1F) == ("major_0x9", "minor_0x1f")
