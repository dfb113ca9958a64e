"""The C alarm callback (hikd/sdk/native/alarm_shim.c): its layouts are the header's, and
what only it does (a queue closed under the library, a record too large, a NULL pUser).

What it copies is tested with the Python callback's assertions in test_callback_copy.py,
and end to end against the real library in tests/listeners/test_alarms.py and
tests/hosts/test_device_hosts.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hikd.sdk import alarm_types, alarms, constants
from hikd.sdk.alarm_shim import SHIM_ABI, SHIM_PATH, ShimQueue, load_shim
from hikd.sdk.ffi import ffi
from tests.shim import SOURCE, ensure_shim

LAYOUTS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "abi_layouts.json").read_text()
)


def defines() -> dict[str, int]:
    text = SOURCE.read_text(encoding="utf-8")
    return {
        name: int(value, 0)
        for name, value in re.findall(r"^#define (\w+) (0x[0-9a-fA-F]+|\d+)\b", text, re.M)
    }


def offset(struct: str, field: str) -> int:
    """From the header's facts (tests/fixtures), checked against cffi's declarations."""
    value = int(LAYOUTS[struct]["fields"][field])
    assert value == ffi.offsetof(struct, field)
    return value


V40_UNION = ("struAlarmFixedHeader", "uStruAlarm")


def test_the_c_callback_reads_the_headers_layouts() -> None:
    """Every offset alarm_shim.c reads a field at: the header's facts for the top-level
    fields; the union's members (the facts give only its size) from hikd's declarations,
    which tests/sdk/test_abi.py checks against the header."""
    d = defines()
    isapi, pic = "NET_DVR_ALARM_ISAPI_INFO", "NET_DVR_ALARM_ISAPI_PICDATA"
    v40 = "NET_DVR_ALARMINFO_V40"
    expected = {
        "COMM_ALARM_V40": constants.COMM_ALARM_V40,
        "COMM_ISAPI_ALARM": constants.COMM_ISAPI_ALARM,
        "ALARMER_SIZE": LAYOUTS["NET_DVR_ALARMER"]["size"],
        "ISAPI_DATA": offset(isapi, "pAlarmData"),
        "ISAPI_DATA_LEN": offset(isapi, "dwAlarmDataLen"),
        "ISAPI_DATA_TYPE": offset(isapi, "byDataType"),
        "ISAPI_PICTURES": offset(isapi, "byPicturesNumber"),
        "ISAPI_PIC_PACK": offset(isapi, "pPicPackData"),
        "PIC_SIZE": LAYOUTS[pic]["size"],
        "PIC_LEN": offset(pic, "dwPicLen"),
        "PIC_TYPE": offset(pic, "byPicType"),
        "PIC_NAME": offset(pic, "szFilename"),
        "PIC_NAME_MAX": ffi.sizeof(ffi.new(f"{pic} *").szFilename),
        "PIC_DATA": offset(pic, "pPicData"),
        "V40_SIZE": LAYOUTS[v40]["size"],
        "V40_LIST": offset(v40, "pAlarmData"),
        "V40_TYPE": offset(v40, "struAlarmFixedHeader")
        + offset("NET_DVR_ALRAM_FIXED_HEADER", "dwAlarmType"),
        "V40_IO_OUTPUTS": ffi.offsetof(v40, *V40_UNION, "struIOAlarm", "dwTrigerAlarmOutNum"),
        "V40_IO_RECORDINGS": ffi.offsetof(v40, *V40_UNION, "struIOAlarm", "dwTrigerRecordChanNum"),
        "V40_CHANNELS": ffi.offsetof(v40, *V40_UNION, "struAlarmChannel", "dwAlarmChanNum"),
        "V40_DISKS": ffi.offsetof(v40, *V40_UNION, "struAlarmHardDisk", "dwAlarmHardDiskNum"),
        "V40_LIST_MAX": alarms._V40_LIST_MAX,
        "SHIM_ABI": SHIM_ABI,
    }
    assert {name: d[name] for name in expected} == expected
    # The union starts where the header's facts put it.
    assert ffi.offsetof(v40, *V40_UNION) == offset("NET_DVR_ALRAM_FIXED_HEADER", "uStruAlarm")


def test_the_c_callback_reads_the_list_of_the_same_alarm_types() -> None:
    text = SOURCE.read_text(encoding="utf-8")
    for name in ("IO_TYPES", "DISK_TYPES", "CHANNEL_TYPES"):
        cases = re.search(rf"((?:case \d+: )+)/\* {name} \*/", text.replace("\n    ", " "))
        assert cases, name
        assert set(map(int, re.findall(r"case (\d+):", cases.group(1)))) == getattr(
            alarm_types, name
        )


@pytest.fixture
def shim() -> Any:
    ensure_shim()
    lib, why = load_shim()
    assert lib is not None, why
    return lib


def test_a_message_after_the_queue_closed_is_counted_and_freed(shim: Any) -> None:
    """The library calls the callback after hikd stopped listening (it keeps it for the
    life of the process): no crash, no record kept for nobody, a count."""
    queue = ShimQueue(shim)
    callback = queue.callback("listen", 7200)
    queue.close()
    data = ffi.new("char[]", b"late")
    callback.cdata(0x4000, ffi.NULL, data, 4, callback.user)
    assert queue.take() == [] and queue.late == 1


def test_a_record_too_large_to_queue_is_counted_not_lost_silently(shim: Any) -> None:
    """A copy that cannot be made (here: more than a record's 4 GB; in life, out of
    memory) counts in `errors`, which the decoder logs; the callback reads no byte of it."""
    queue = ShimQueue(shim)
    callback = queue.callback("arming")
    pics = ffi.new("NET_DVR_ALARM_ISAPI_PICDATA[2]")
    small = ffi.new("char[1]")
    for i in range(2):
        pics[i].dwPicLen = 0xFFFFFFFF
        pics[i].pPicData = small
    info = ffi.new("NET_DVR_ALARM_ISAPI_INFO *")
    info.byPicturesNumber = 2
    info.pPicPackData = pics
    callback.cdata(0x6009, ffi.NULL, ffi.cast("char *", info), 56, callback.user)
    callback.cdata(0x4000, ffi.NULL, small, 1, callback.user)
    assert [raw.command for raw in queue.take()] == [0x4000]
    assert queue.errors == 1
    queue.close()


def test_records_larger_than_the_buffer_are_taken_whole_and_in_order(shim: Any) -> None:
    queue = ShimQueue(shim)
    callback = queue.callback("arming")
    big = ffi.new("char[]", 3_000_000)  # a 3 MB picture (sdk-over-isapi.md part 1 §2)
    small = ffi.new("char[]", b"s")
    callback.cdata(0x4000, ffi.NULL, small, 1, callback.user)
    callback.cdata(0x4001, ffi.NULL, big, 3_000_000, callback.user)
    callback.cdata(0x4002, ffi.NULL, small, 1, callback.user)
    taken = []
    while len(taken) < 3:
        taken += queue.take()
    assert [(raw.command, len(raw.payload)) for raw in taken] == [
        (0x4000, 1),
        (0x4001, 3_000_000),
        (0x4002, 1),
    ]
    assert not queue.pending
    queue.close()


def test_a_null_user_pointer_goes_to_the_arming_queue(shim: Any) -> None:
    queue = ShimQueue(shim)
    callback = queue.callback("arming")
    data = ffi.new("char[]", b"x")
    callback.cdata(0x4000, ffi.NULL, data, 1, ffi.NULL)
    [raw] = queue.take()
    assert raw.source == "arming" and raw.listen_port == 0
    queue.close()


def test_the_library_is_never_installed_by_git() -> None:
    """Built by the Makefile on each machine (README "The alarm callback"), never committed."""
    ignored = (Path(__file__).parents[2] / ".gitignore").read_text()
    assert "hikd/sdk/native/*.so" in ignored
    assert SHIM_PATH.name.endswith(".so")
