"""The cffi declarations against the vendor header's layouts (x86-64), and the constants.

tests/fixtures/abi_layouts.json and abi_constants.json were extracted from the header
facts by tools/gen_sdk_cdef.py; this test needs neither the facts nor the library,
except the symbol check, which runs against the real libhcnetsdk.so when installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hikd.sdk import constants
from hikd.sdk._cdef import CALLBACKS, CDEF, FUNCTIONS, STRUCTS
from hikd.sdk.ffi import ffi

FIXTURES = Path(__file__).parents[1] / "fixtures"
LAYOUTS: dict[str, Any] = json.loads((FIXTURES / "abi_layouts.json").read_text())
CONSTANTS: dict[str, dict[str, int]] = json.loads((FIXTURES / "abi_constants.json").read_text())

# The functions hikd calls; a regenerated _cdef.py must keep every one of them.
REQUIRED_FUNCTIONS = [
    "NET_DVR_Init",
    "NET_DVR_Cleanup",
    "NET_DVR_SetSDKInitCfg",
    "NET_DVR_SetConnectTime",
    "NET_DVR_SetReconnect",
    "NET_DVR_SetRecvTimeOut",
    "NET_DVR_SetLogToFile",
    "NET_DVR_SetExceptionCallBack_V30",
    "NET_DVR_GetLastError",
    "NET_DVR_GetErrorMsg",
    "NET_DVR_GetSDKVersion",
    "NET_DVR_GetSDKBuildVersion",
    "NET_DVR_Login_V40",
    "NET_DVR_Logout",
    "NET_DVR_SetDVRMessageCallBack_V30",
    "NET_DVR_SetupAlarmChan_V41",
    "NET_DVR_CloseAlarmChan_V30",
    "NET_DVR_StartListen_V30",
    "NET_DVR_StopListen_V30",
    "NET_DVR_FindFile_V40",
    "NET_DVR_FindNextFile_V40",
    "NET_DVR_FindClose_V30",
    "NET_DVR_GetFileByTime_V40",
    "NET_DVR_GetFileByName",
    "NET_DVR_PlayBackControl_V40",
    "NET_DVR_GetDownloadPos",
    "NET_DVR_StopGetFile",
    "NET_DVR_FindDVRLog_V30",
    "NET_DVR_FindNextLog_V30",
    "NET_DVR_FindLogClose_V30",
    "NET_DVR_RemoteControl",
    "NET_DVR_GetDeviceConfig",
    "NET_DVR_GetDVRConfig",
    "NET_DVR_CaptureJPEGPicture_NEW",
    "NET_DVR_GetDiskList",
    "NET_DVR_BackupByTime",
    "NET_DVR_Backup",
    "NET_DVR_GetBackupProgress",
    "NET_DVR_StopBackup",
    "NET_DVR_STDXMLConfig",
    "NET_DVR_GetConfigFile_V30",
]

REQUIRED_STRUCTS = [
    "NET_DVR_ALARMER",
    "NET_DVR_ALARMINFO",
    "NET_DVR_ALARMINFO_V30",
    "NET_DVR_ALARMINFO_V40",
    "NET_DVR_ALRAM_FIXED_HEADER",
    "NET_DVR_IPALARMINFO",
    "NET_DVR_IPALARMINFO_V31",
    "NET_DVR_ALARM_HOT_SPARE",
    "NET_DVR_VQD_DIAGNOSE_INFO",
    "NET_VCA_RULE_ALARM",
    "NET_DVR_ALARM_ISAPI_INFO",
    "NET_DVR_ALARM_ISAPI_PICDATA",
    "NET_DVR_TIME",
    "NET_DVR_TIME_EX",
    "NET_DVR_DEVICEINFO_V30",
    "NET_DVR_DEVICEINFO_V40",
    "NET_DVR_USER_LOGIN_INFO",
    "NET_DVR_SETUPALARM_PARAM",
    "NET_DVR_SETUPALARM_PARAM_V50",
    "NET_DVR_LOCAL_SDK_PATH",
    "NET_DVR_FILECOND_V40",
    "NET_DVR_FINDDATA_V40",
    "NET_DVR_PLAYCOND",
    "NET_DVR_LOG_V30",
    "NET_DVR_JPEGPARA",
    "NET_DVR_XML_CONFIG_INPUT",
    "NET_DVR_XML_CONFIG_OUTPUT",
    "NET_DVR_GETWORKSTATE_COND",
    "NET_DVR_WORKSTATE_V40",
    "NET_DVR_WORKSTATE_V30",
    "NET_DVR_BACKUP_TIME_PARAM",
    "NET_DVR_BACKUP_NAME_PARAM",
    "NET_DVR_DISKABILITY_LIST",
    "NET_DVR_DEVICECFG_V40",
]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_struct_layout_matches_header(name: str) -> None:
    facts = LAYOUTS[name]
    assert ffi.sizeof(name) == facts["size"]
    assert ffi.alignof(name) == facts["align"]
    offsets = {field: ffi.offsetof(name, field) for field in facts["fields"]}
    assert offsets == facts["fields"]


def test_every_declared_struct_is_checked() -> None:
    assert set(STRUCTS) == set(LAYOUTS)
    assert set(REQUIRED_STRUCTS) <= set(STRUCTS)


def test_sizes_measured_with_the_vendor_header() -> None:
    # An independent check: sizes printed by a C++ program compiled against the real
    # header (sdk-over-isapi.md, part 1 and 2 §c, §d, §g), not taken from the facts.
    measured = {
        "NET_DVR_USER_LOGIN_INFO": 416,
        "NET_DVR_DEVICEINFO_V40": 344,
        "NET_DVR_DEVICEINFO_V30": 80,
        "NET_DVR_SETUPALARM_PARAM": 20,
        "NET_DVR_ALARMER": 372,
        "NET_DVR_ALARM_ISAPI_INFO": 56,
        "NET_DVR_ALARM_ISAPI_PICDATA": 272,
        "NET_DVR_LOCAL_SDK_PATH": 384,
        "NET_DVR_XML_CONFIG_INPUT": 72,
        "NET_DVR_XML_CONFIG_OUTPUT": 72,
        "NET_DVR_GETWORKSTATE_COND": 2252,
        "NET_DVR_WORKSTATE_V40": 490264,
        "NET_DVR_DISKABILITY_LIST": 13320,
        "NET_DVR_BACKUP_TIME_PARAM": 120,
    }
    assert {name: ffi.sizeof(name) for name in measured} == measured
    assert ffi.offsetof("NET_DVR_ALARMER", "lUserID") == 8
    assert ffi.offsetof("NET_DVR_ALARMER", "sSerialNumber") == 12
    assert ffi.offsetof("NET_DVR_ALARMER", "sDeviceIP") == 104
    assert ffi.offsetof("NET_DVR_ALARMER", "wSocketPort") == 364


def test_alarm_header_union_members() -> None:
    # The facts only give the union's size; its members come from the header and must
    # overlay the start of the union (guide 5.16, COMM_ALARM_V40).
    header = ffi.new("NET_DVR_ALRAM_FIXED_HEADER *")
    union = ffi.offsetof("NET_DVR_ALRAM_FIXED_HEADER", "uStruAlarm")
    assert union == 12
    assert ffi.sizeof(header.uStruAlarm) == 128
    header.uStruAlarm.struIOAlarm.dwAlarmInputNo = 7
    assert header.uStruAlarm.struAlarmChannel.dwAlarmChanNum == 7
    assert header.uStruAlarm.struAlarmHardDisk.dwAlarmHardDiskNum == 7
    raw = bytes(ffi.buffer(header))
    assert raw[union : union + 4] == (7).to_bytes(4, "little")


def _type(name: str) -> Any:
    return ffi.typeof(name)


def test_callbacks_take_32_bit_int_for_long() -> None:
    assert set(CALLBACKS) >= {
        "MSGCallBack",
        "MSGCallBack_V31",
        "fExceptionCallBack",
        "fLoginResultCallBack",
    }
    int_t, uint_t = _type("int"), _type("unsigned int")
    msg = _type("MSGCallBack")
    assert msg.args == (
        int_t,
        _type("NET_DVR_ALARMER *"),
        _type("char *"),
        uint_t,
        _type("void *"),
    )
    assert msg.result == _type("void")
    assert _type("MSGCallBack_V31").result == int_t
    exc = _type("fExceptionCallBack")
    assert exc.args == (uint_t, int_t, int_t, _type("void *"))
    login = _type("fLoginResultCallBack")
    assert login.args == (int_t, uint_t, _type("NET_DVR_DEVICEINFO_V30 *"), _type("void *"))
    assert ffi.sizeof("LONG") == 4
    fields = dict(ffi.typeof("NET_DVR_USER_LOGIN_INFO").fields)
    assert fields["cbLoginResult"].type == _type("fLoginResultCallBack")


def test_every_function_is_declared() -> None:
    assert set(REQUIRED_FUNCTIONS) <= set(FUNCTIONS)
    for name in FUNCTIONS:
        assert re.search(rf"^\w[\w ]*\**\s*{name}\(", CDEF, re.MULTILINE), name


def _vendor_library_dir() -> Path | None:
    # Locate the wheel's binaries without importing the package (importing it runs its
    # wrapper, which loads the library itself).
    spec = importlib.util.find_spec("HCNetSDK")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "Libs" / "linux"
    return directory if (directory / "libhcnetsdk.so").is_file() else None


def test_every_function_exists_in_the_real_library() -> None:
    directory = _vendor_library_dir()
    if directory is None:
        pytest.skip("the vendor library (hcnetsdk-python, extra 'sdk') is not installed")
    lib = ffi.dlopen(str(directory / "libhcnetsdk.so"))
    missing = []
    for name in FUNCTIONS:
        try:
            getattr(lib, name)
        except AttributeError:
            missing.append(name)
    assert missing == []
    # Calling one harmless function proves the declared signature is usable.
    assert isinstance(lib.NET_DVR_GetSDKBuildVersion(), int)


def test_constants_match_header() -> None:
    header = CONSTANTS["constants"]
    assert {name: getattr(constants, name) for name in header} == header
    assert constants.COMM_ISAPI_ALARM == 0x6009
    assert constants.COMM_ALARM_V40 == 0x4007


def test_constants_not_in_header() -> None:
    assert constants.COMM_ALARM_ERROR_MESSAGE == 0x7FFF
    assert "COMM_ALARM_ERROR_MESSAGE" not in CONSTANTS["constants"]
    assert (
        constants.NET_SDK_INIT_CFG_SDK_PATH,
        constants.NET_SDK_INIT_CFG_LIBEAY_PATH,
        constants.NET_SDK_INIT_CFG_SSLEAY_PATH,
    ) == (2, 3, 4)


def test_command_and_exception_names() -> None:
    header = CONSTANTS["constants"]
    comm = {v: n for n, v in header.items() if n.startswith("COMM_")}
    assert {v: constants.COMMAND_NAMES[v] for v in comm} == comm
    assert constants.COMMAND_NAMES[0x7FFF] == "COMM_ALARM_ERROR_MESSAGE"
    # The exception callback codes seen from the real library (sdk-over-isapi.md).
    for code, name in (
        (0x8000, "EXCEPTION_EXCHANGE"),
        (0x8006, "EXCEPTION_ALARMRECONNECT"),
        (0x8016, "ALARM_RECONNECTSUCCESS"),
        (0x8040, "EXCEPTION_RELOGIN"),
        (0x8041, "RELOGIN_SUCCESS"),
    ):
        assert constants.EXCEPTION_NAMES[code] == name
    assert all(0x8000 <= code < 0x8100 for code in constants.EXCEPTION_NAMES)


# ---- the generator's own checks -----------------------------------------------------


@pytest.fixture(scope="module")
def generator() -> Iterator[ModuleType]:
    path = Path(__file__).parents[2] / "tools" / "gen_sdk_cdef.py"
    spec = importlib.util.spec_from_file_location("gen_sdk_cdef", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_sdk_cdef"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gen_sdk_cdef", None)


def _struct(size: int, align: int, *fields: tuple[str, int, int, str]) -> dict[str, Any]:
    return {
        "size": size,
        "align": align,
        "fields": [{"name": n, "offset": o, "size": s, "type": t} for n, o, s, t in fields],
    }


def test_generator_refuses_a_layout_cffi_would_not_reproduce(generator: Any) -> None:
    # A packed struct (a DWORD at offset 1) cannot be declared in cffi's ABI mode without
    # packing: the generator must stop rather than write a wrong layout.
    structs = {"PACKED": _struct(5, 1, ("byA", 0, 1, "BYTE"), ("dwB", 1, 4, "DWORD"))}
    cdef = "typedef unsigned char BYTE; typedef unsigned int DWORD;\n"
    cdef += "typedef struct PACKED { BYTE byA; DWORD dwB; } PACKED;"
    with pytest.raises(generator.FactsError, match=r"PACKED.dwB: offset 4 != 1"):
        generator.verify(cdef, structs, ["PACKED"])


def test_generator_declares_unions_and_tag_names(generator: Any) -> None:
    facts = {
        "structs": {
            "INNER": _struct(4, 4, ("dwX", 0, 4, "DWORD")),
            "CHOICE": _struct(8, 4, ("struInner", 0, 4, "INNER"), ("byRaw", 0, 8, "BYTE[8]")),
            "OUTER": _struct(12, 4, ("lValue", 0, 4, "LONG"), ("uChoice", 4, 8, "CHOICE")),
        },
        "functions": {},
        "constants": {},
    }
    gen = generator.Generator(facts)
    assert gen.struct_name("tagOUTER") == "OUTER"
    gen.visit("OUTER")
    assert gen.order == ["INNER", "CHOICE", "OUTER"]
    assert generator.is_union(facts["structs"]["CHOICE"])
    body = "\n".join(gen.struct_body("CHOICE"))
    assert body.startswith("union CHOICE {")
    with pytest.raises(generator.FactsError, match="should be 4 bytes"):
        bad = _struct(2, 2, ("lValue", 0, 2, "LONG"))
        generator.Generator({"structs": {"BAD": bad}, "functions": {}, "constants": {}}).visit(
            "BAD"
        )


def test_prebuilt_declarations_match_cdef() -> None:
    """hikd/sdk/_ffi_abi.py (the declarations pre-parsed, what `hikd.sdk.ffi` loads) is what
    tools/gen_sdk_ffi.py makes of today's _cdef.py with the installed cffi: run the tool
    after changing either."""
    path = Path(__file__).parents[2] / "tools" / "gen_sdk_ffi.py"
    spec = importlib.util.spec_from_file_location("gen_sdk_ffi", path)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    committed = (Path(__file__).parents[2] / tool.TARGET).read_text(encoding="utf-8")
    assert committed == tool.render(CDEF), "stale: run python tools/gen_sdk_ffi.py"


def test_loading_the_declarations_needs_no_parser() -> None:
    """A process that loads the declarations imports neither cffi's C parser nor pycparser
    (parsing them took 0.14-0.8 s and MBs in every device host at every start)."""
    code = (
        "import sys, hikd.sdk.ffi\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cffi', 'pycparser'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
