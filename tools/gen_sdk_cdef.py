"""Generate hikd's cffi declarations of the vendor SDK from the header facts.

Run by hand when the vendor header changes:

    python tools/gen_sdk_cdef.py path/to/hcnetsdk-linux-x64.json

The facts file (structs with every field's offset, size and type; functions with
their canonical C signatures; numeric #defines) was extracted from HCNetSDK.h by
clang for x86_64-pc-linux-gnu. This script never guesses a layout: it declares
the fields exactly as the facts list them, then compiles the declarations with
cffi and refuses to write anything if one size or offset differs from the facts.

It writes:
  hikd/sdk/_cdef.py               CDEF (the cffi cdef text), FUNCTIONS, STRUCTS, CALLBACKS
  hikd/sdk/constants.py           the named integers hikd uses, with value -> name maps
  tests/fixtures/abi_layouts.json for each declared struct: size, align, field offsets
  tests/fixtures/abi_constants.json the facts' values of the constants in constants.py
                                  and of the error and log-type macros errors.py names
  hikd/sdk/_ffi_abi.py            CDEF pre-parsed for cffi (tools/gen_sdk_ffi.py)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Functions hikd calls. Missing ones are an error unless listed in OPTIONAL_FUNCTIONS.
FUNCTIONS = (
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
    "NET_DVR_SetDVRMessageCallBack_V31",
    "NET_DVR_SetupAlarmChan_V41",
    "NET_DVR_SetupAlarmChan_V50",
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
    "NET_DVR_GetDVRWorkState_V30",
    "NET_DVR_SetAlarmOut",
)
OPTIONAL_FUNCTIONS = frozenset(
    {
        "NET_DVR_SetDVRMessageCallBack_V31",
        "NET_DVR_GetDVRWorkState_V30",
        "NET_DVR_SetupAlarmChan_V50",
    }
)

# Structs declared beyond those the functions reference: the alarm payloads that the
# listeners decode from raw bytes (guide tables 5.31/5.33 and the COMM_* the peers decode),
# and the parameter blocks passed through void* arguments.
EXTRA_STRUCTS = (
    "NET_DVR_TIME",
    "NET_DVR_TIME_EX",
    "NET_DVR_ALARMER",
    "NET_DVR_ALARMINFO",  # COMM_ALARM
    "NET_DVR_ALARMINFO_V30",  # COMM_ALARM_V30
    "NET_DVR_ALARMINFO_V40",  # COMM_ALARM_V40
    "NET_DVR_ALRAM_FIXED_HEADER",  # (sic) the vendor's spelling
    "NET_DVR_IPALARMINFO",  # COMM_IPCCFG
    "NET_DVR_IPALARMINFO_V31",  # COMM_IPCCFG_V31
    "NET_DVR_ALARM_HOT_SPARE",  # COMM_ALARM_HOT_SPARE
    "NET_DVR_VQD_DIAGNOSE_INFO",  # COMM_ALARM_VQD (guide table 5.31)
    "NET_DVR_VQD_ALARM",  # COMM_ALARM_VQD_EX
    "NET_VCA_RULE_ALARM",  # COMM_ALARM_RULE (line crossing, intrusion, ...)
    "NET_DVR_ALARM_ISAPI_INFO",  # COMM_ISAPI_ALARM
    "NET_DVR_ALARM_ISAPI_PICDATA",
    "NET_DVR_VEHICLE_CONTROL_ALARM",  # COMM_VEHICLE_CONTROL_ALARM (guide table 5.31)
    "NET_VCA_FACESNAP_RESULT",  # COMM_UPLOAD_FACESNAP_RESULT
    "NET_VCA_FACESNAP_MATCH_ALARM",  # COMM_SNAP_MATCH_ALARM
    "NET_DVR_FACE_DETECTION",  # COMM_ALARM_FACE_DETECTION
    "NET_ITS_PLATE_RESULT",  # COMM_ITS_PLATE_RESULT
    "NET_DVR_PLATE_RESULT",  # COMM_UPLOAD_PLATE_RESULT
    "NET_DVR_ACS_ALARM_INFO",  # COMM_ALARM_ACS
    "NET_DVR_PDC_ALRAM_INFO",  # COMM_ALARM_PDC (sic)
    "NET_DVR_THERMOMETRY_ALARM",  # COMM_THERMOMETRY_ALARM
    "NET_DVR_FIREDETECTION_ALARM",  # COMM_FIREDETECTION_ALARM
    "NET_DVR_DEVICEINFO_V30",
    "NET_DVR_DEVICEINFO_V40",
    "NET_DVR_USER_LOGIN_INFO",
    "NET_DVR_SETUPALARM_PARAM",
    "NET_DVR_SETUPALARM_PARAM_V50",
    "NET_DVR_LOCAL_SDK_PATH",  # NET_DVR_SetSDKInitCfg(NET_SDK_INIT_CFG_SDK_PATH, ...)
    "NET_DVR_FILECOND_V40",
    "NET_DVR_FINDDATA_V40",
    "NET_DVR_PLAYCOND",
    "NET_DVR_LOG_V30",
    "NET_DVR_JPEGPARA",
    "NET_DVR_XML_CONFIG_INPUT",
    "NET_DVR_XML_CONFIG_OUTPUT",
    "NET_DVR_GETWORKSTATE_COND",  # GetDeviceConfig(NET_DVR_GET_WORK_STATUS)
    "NET_DVR_WORKSTATE_V40",
    "NET_DVR_WORKSTATE_V30",
    "NET_DVR_BACKUP_TIME_PARAM",
    "NET_DVR_BACKUP_NAME_PARAM",
    "NET_DVR_DISKABILITY_LIST",
    "NET_DVR_DEVICECFG_V40",  # GetDVRConfig(NET_DVR_GET_DEVICECFG_V40)
)

# Scalar typedefs of the header on Linux x86-64, with their size: the generator checks
# every field against these sizes, so a wrong assumption fails here, not at run time.
SCALARS: dict[str, tuple[str, int]] = {
    "BYTE": ("unsigned char", 1),
    "WORD": ("unsigned short", 2),
    "DWORD": ("unsigned int", 4),
    "LONG": ("int", 4),  # LONG is 32-bit on Linux x86-64 (the header maps it to int)
    "BOOL": ("int", 4),
    "UINT": ("unsigned int", 4),
    "SHORT": ("short", 2),
    "USHORT": ("unsigned short", 2),
    "INT64": ("long long", 8),
    "UINT64": ("unsigned long long", 8),
}
C_BUILTINS: dict[str, int] = {
    "char": 1,
    "signed char": 1,
    "unsigned char": 1,
    "short": 2,
    "unsigned short": 2,
    "int": 4,
    "unsigned int": 4,
    "long": 8,
    "unsigned long": 8,
    "long long": 8,
    "unsigned long long": 8,
    "float": 4,
    "double": 8,
}
C_WORDS = frozenset(
    {"void", "char", "short", "int", "long", "unsigned", "signed", "const", "float", "double"}
)
# Enum types the facts name but do not define. A C enum on x86-64 is a 4-byte int.
ENUMS = frozenset({"VCA_EVENT_TYPE", "VCA_CROSS_DIRECTION", "NET_SDK_INIT_CFG_TYPE"})

# Callback types that no function signature in the facts spells out (struct fields only).
# Prototype from HCNetSDK.h: typedef void (CALLBACK *fLoginResultCallBack)(LONG lUserID,
# DWORD dwResult, LPNET_DVR_DEVICEINFO_V30 lpDeviceInfo, void* pUser); LONG -> int.
CALLBACK_SUPPLEMENT: dict[str, str] = {
    "fLoginResultCallBack": "void (*)(int, unsigned int, NET_DVR_DEVICEINFO_V30 *, void *)",
}

# The facts give an unnamed union's size and offset but not its members. These members
# are the header's, restricted to leading fields that are the same in every header
# version; the union keeps the vendor's byte array so its size is exact whatever the
# members. The generator checks each member fits and the offsets come out right.
UNION_SUPPLEMENT: dict[tuple[str, str], list[str]] = {
    # Guide 5.16 / COMM_ALARM_V40: which member is valid depends on dwAlarmType.
    ("NET_DVR_ALRAM_FIXED_HEADER", "uStruAlarm"): [
        "BYTE byUnionLen[128];",
        # dwAlarmType 0 (alarm input)
        "struct { DWORD dwAlarmInputNo; DWORD dwTrigerAlarmOutNum;"
        " DWORD dwTrigerRecordChanNum; } struIOAlarm;",
        # dwAlarmType 2, 3, 6, 9, 10, 13 (per-channel alarms)
        "struct { DWORD dwAlarmChanNum; } struAlarmChannel;",
        # dwAlarmType 1, 4, 5 (disk alarms)
        "struct { DWORD dwAlarmHardDiskNum; } struAlarmHardDisk;",
    ],
    # COMM_ALARM_PDC: byMode 0 -> struStatFrame, 1 -> struStatTime.
    ("NET_DVR_PDC_ALRAM_INFO", "uStatModeParam"): [
        "BYTE byLen[140];",
        "struct { DWORD dwRelativeTime; DWORD dwAbsTime; } struStatFrame;",
        "struct { NET_DVR_TIME tmStart; NET_DVR_TIME tmEnd; } struStatTime;",
    ],
}

# Constants: names copied from the facts into hikd/sdk/constants.py.
CONSTANT_PREFIXES = ("COMM_",)
CONSTANT_NAMES = (
    # playback / download control (PlayBackControl_V40)
    "NET_DVR_PLAYSTART",
    "NET_DVR_PLAYSTOP",
    "NET_DVR_PLAYGETPOS",
    "NET_DVR_SET_TRANS_TYPE",
    # remote control, config and status commands
    "NET_DVR_CHECK_USER_STATUS",
    "NET_DVR_GET_WORK_STATUS",
    "NET_DVR_GET_DEVICECFG_V40",
    "NET_DVR_GET_TIMECFG",
    "NET_DVR_GET_HDCFG",
    # FindNextFile_V40 / FindNextLog_V30 results (guide 5.14, 4.5: logs use the same codes)
    "NET_DVR_FILE_SUCCESS",
    "NET_DVR_FILE_NOFIND",
    "NET_DVR_ISFINDING",
    "NET_DVR_NOMOREFILE",
    "NET_DVR_FILE_EXCEPTION",
    # log major types (guide 6.5)
    "MAJOR_ALARM",
    "MAJOR_EXCEPTION",
    "MAJOR_OPERATION",
    "MAJOR_INFORMATION",
    "MAJOR_EVENT",
    # GetBackupProgress states beyond 0..99 % (guide table 5.128)
    "BACKUP_SUCCESS",
    "BACKUP_CHANGE_DEVICE",
    "BACKUP_SEARCH_DEVICE",
    "BACKUP_SEARCH_FILE",
    "BACKUP_SEARCH_LOG_FILE",
    "BACKUP_CHANGE_DISK",
    "BACKUP_EXCEPTION",
    "BACKUP_FAIL",
    "BACKUP_TIME_SEG_NO_FILE",
    "BACKUP_NO_RESOURCE",
    "BACKUP_DEVICE_LOW_SPACE",
    "BACKUP_DISK_FINALIZED",
    "BACKUP_DISK_EXCEPTION",
    "BACKUP_DEVICE_NOT_EXIST",
    "BACKUP_OTHER_BACKUP_WORK",
    "BACKUP_USER_NO_RIGHT",
    "BACKUP_OPERATE_FAIL",
    "BACKUP_NO_LOG_FILE",
    # sizes of fixed char fields
    "NET_DVR_DEV_ADDRESS_MAX_LEN",
    "NET_DVR_LOGIN_USERNAME_MAX_LEN",
    "NET_DVR_LOGIN_PASSWD_MAX_LEN",
    "SERIALNO_LEN",
    "NAME_LEN",
    "PASSWD_LEN",
    "MACADDR_LEN",
    "STREAM_ID_LEN",
    "NET_SDK_MAX_FILE_PATH",
    "MAX_DISKNUM_V30",
    "MAX_CHANNUM_V40",
)


# The exception callback's dwType codes (0x8000 family) that are not named EXCEPTION_*:
# the library reports recovery with these (0x8016 after the alarm channel reconnects,
# 0x8041 after a re-login; sdk-over-isapi.md part 1).
EXCEPTION_CALLBACK_EXTRA = frozenset(
    {
        "SERIAL_RECONNECTSUCCESS",
        "PREVIEW_RECONNECTSUCCESS",
        "ALARM_RECONNECTSUCCESS",
        "RESUME_EXCHANGE",
        "NETWORK_FLOWTEST_EXCEPTION",
        "PICPREVIEW_RECONNECTSUCCESS",
        "PASSIVETRANS_RECONNECTSUCCESS",
        "SUCCESS_PUSHDEVLOGON",
        "RELOGIN_SUCCESS",
    }
)


def _is_exception_code(name: str, value: int) -> bool:
    # EXCEPTION_MAJOR_*/EXCEPTION_MINOR_* are hardware-fault sub-codes of another
    # feature; the exception callback's dwType codes are the 0x8000 family.
    if name in EXCEPTION_CALLBACK_EXTRA:
        return True
    return name.startswith("EXCEPTION_") and value >= 0x8000


# Constants hikd needs that the facts do not hold, with where each comes from.
CONSTANT_SUPPLEMENT: tuple[tuple[str, int, str], ...] = (
    (
        "COMM_ALARM_ERROR_MESSAGE",
        0x7FFF,
        "not in the header: the library reports a malformed upload with this lCommand",
    ),
    ("NET_SDK_INIT_CFG_TYPE_CHECK_MODULE_COM", 0, "enum NET_SDK_INIT_CFG_TYPE"),
    ("NET_SDK_INIT_CFG_ABILITY", 1, "enum NET_SDK_INIT_CFG_TYPE"),
    ("NET_SDK_INIT_CFG_SDK_PATH", 2, "enum NET_SDK_INIT_CFG_TYPE"),
    ("NET_SDK_INIT_CFG_LIBEAY_PATH", 3, "enum NET_SDK_INIT_CFG_TYPE: path of libcrypto.so"),
    ("NET_SDK_INIT_CFG_SSLEAY_PATH", 4, "enum NET_SDK_INIT_CFG_TYPE: path of libssl.so"),
    ("BACKUP_TYPE_BY_NAME", 1, "NET_DVR_Backup dwBackupType, guide 5.31.18"),
    ("BACKUP_TYPE_BY_TIME", 2, "NET_DVR_Backup dwBackupType, guide 5.31.18"),
    ("BACKUP_TYPE_PICTURE", 3, "NET_DVR_Backup dwBackupType, guide 5.31.18"),
    ("BACKUP_TYPE_INQUEST_RESUME", 4, "NET_DVR_Backup dwBackupType, guide 5.31.18"),
    ("BACKUP_TYPE_LOG", 5, "NET_DVR_Backup dwBackupType, guide 5.31.18"),
)

_TYPE_RE = re.compile(r"^(?P<base>.*?)\s*(?P<ptr>(?:\*\s*(?:const\s*)?)*)(?P<dims>(?:\[\d+\])*)$")
_FUNCPTR_RE = re.compile(r"^(?P<result>.+?)\s*\(\*\)\((?P<args>.*)\)$")
_NESTED_RE = re.compile(r"^struct \{(?P<fields>[^}]*)\} (?P<name>\w+);$")
_UNNAMED_RE = re.compile(r"^(?P<kind>struct|union) \(unnamed (?:struct|union) at [^)]*\)$")


class FactsError(Exception):
    """The facts do not allow an exact declaration; say what and stop."""


@dataclass(frozen=True)
class FieldType:
    base: str
    pointers: int
    dims: tuple[int, ...]


def parse_type(text: str) -> FieldType:
    m = _TYPE_RE.match(text.strip())
    if m is None:
        raise FactsError(f"cannot parse type {text!r}")
    dims = tuple(int(d) for d in re.findall(r"\[(\d+)\]", m.group("dims")))
    return FieldType(m.group("base").strip(), m.group("ptr").count("*"), dims)


def is_union(struct: dict[str, Any]) -> bool:
    fields = struct["fields"]
    return len(fields) > 1 and all(f["offset"] == 0 for f in fields)


class Generator:
    def __init__(self, facts: dict[str, Any]) -> None:
        self.structs: dict[str, Any] = facts["structs"]
        self.functions: dict[str, Any] = facts["functions"]
        self.constants: dict[str, int] = facts["constants"]
        self.callbacks: dict[str, str] = {}  # typedef name -> canonical function pointer
        self.order: list[str] = []  # struct names, dependencies first
        self._visiting: set[str] = set()
        self._pointer_only: set[str] = set()

    # ---- types -------------------------------------------------------------------

    def struct_name(self, name: str) -> str | None:
        """The facts' struct name for a name as it appears in a type (tag or typedef)."""
        if name in self.structs:
            return name
        if name.startswith("tag") and name[3:] in self.structs:
            return name[3:]
        return None

    def require_struct(self, name: str, by_value: bool) -> None:
        if not by_value:
            # A pointer only needs the typedef; the body is emitted when reached anyway.
            self._pointer_only.add(name)
            return
        self.visit(name)

    def visit(self, name: str) -> None:
        if name in self.order:
            return
        if name in self._visiting:
            raise FactsError(f"struct {name} contains itself by value")
        self._visiting.add(name)
        struct = self.structs[name]
        for field in struct["fields"]:
            ftype = parse_type(field["type"])
            self.check_field_type(name, field, ftype)
        self._visiting.discard(name)
        self.order.append(name)

    def check_field_type(self, owner: str, field: dict[str, Any], ftype: FieldType) -> None:
        base = ftype.base
        count = 1
        for d in ftype.dims:
            count *= d
        unnamed = _UNNAMED_RE.match(base)
        if unnamed:
            if ftype.pointers or ftype.dims:
                raise FactsError(f"{owner}.{field['name']}: arrays of unnamed types unsupported")
            for member in UNION_SUPPLEMENT.get((owner, field["name"]), []):
                for word in re.findall(r"\b(NET_\w+)\b", member):
                    self.require_struct(word, by_value=True)
            return
        if ftype.pointers:
            if count * 8 != field["size"]:
                raise FactsError(f"{owner}.{field['name']}: pointer size mismatch")
            sname = self.struct_name(base)
            if sname:
                self.require_struct(sname, by_value=False)
            elif base in CALLBACK_SUPPLEMENT or base in self.callbacks:
                raise FactsError(f"{owner}.{field['name']}: pointer to callback unsupported")
            return
        if base in SCALARS:
            size = SCALARS[base][1]
        elif base in C_BUILTINS:
            size = C_BUILTINS[base]
        elif base in ENUMS:
            size = 4
        elif base in CALLBACK_SUPPLEMENT:
            self.callbacks[base] = CALLBACK_SUPPLEMENT[base]
            size = 8
        else:
            sname = self.struct_name(base)
            if sname is None:
                raise FactsError(f"{owner}.{field['name']}: unknown type {base!r}")
            self.require_struct(sname, by_value=True)
            size = self.structs[sname]["size"]
        if size * count != field["size"]:
            raise FactsError(
                f"{owner}.{field['name']}: {field['type']} should be {size * count} bytes,"
                f" facts say {field['size']}"
            )

    def c_type(self, base: str) -> str:
        sname = self.struct_name(base)
        if sname:
            return sname
        return base

    # ---- canonical signatures --------------------------------------------------

    def canonical(self, text: str, owner: str) -> str:
        """A canonical C type with tag names replaced by the declared typedef names."""

        def repl(m: re.Match[str]) -> str:
            word = m.group(0)
            sname = self.struct_name(word)
            if sname:
                self.require_struct(sname, by_value=False)
                return sname
            if word.startswith("tag") and word[3:] in ENUMS:
                return word[3:]
            if word in ENUMS or word in SCALARS or word in self.callbacks:
                return word
            if word in C_WORDS:
                return word
            raise FactsError(f"{owner}: unknown type name {word!r} in {text!r}")

        return re.sub(r"[A-Za-z_]\w*", repl, text)

    def function_decl(self, name: str) -> str:
        fn = self.functions[name]
        args: list[str] = []
        for arg in fn["args"]:
            canonical = arg["canonical"]
            fp = _FUNCPTR_RE.match(canonical)
            if fp:
                # Callbacks get a typedef: the header's name where it has one
                # (MSGCallBack), else the parameter's name (fExceptionCallBack).
                declared = arg["type"]
                cb_name = declared if re.fullmatch(r"\w+", declared) else arg["name"]
                proto = self.canonical(canonical, f"{name}({arg['name']})")
                if self.callbacks.get(cb_name, proto) != proto:
                    raise FactsError(f"callback {cb_name} has two prototypes")
                self.callbacks[cb_name] = proto
                args.append(f"{cb_name} {arg['name']}")
            else:
                args.append(f"{self.canonical(canonical, name)} {arg['name']}")
        result = self.canonical(fn["result"], name)
        if not args:
            return f"{result} {name}(void);"
        return f"{result} {name}(\n    " + ",\n    ".join(args) + "\n);"

    # ---- emission ----------------------------------------------------------------

    def field_decl(self, owner: str, field: dict[str, Any]) -> list[str]:
        ftype = parse_type(field["type"])
        name = field["name"]
        unnamed = _UNNAMED_RE.match(ftype.base)
        if unnamed:
            members = UNION_SUPPLEMENT.get((owner, name))
            kind = unnamed.group("kind")
            if members is None:
                # Members unknown: keep the bytes. Alignment 1 is checked by cffi below.
                members = [f"BYTE byOpaque[{field['size']}];"]
            lines = [f"    {kind} {{"]
            for member in members:
                nested = _NESTED_RE.match(member)
                if nested is None:
                    lines.append(f"        {member}")
                    continue
                lines.append("        struct {")
                for part in nested.group("fields").split(";"):
                    if part.strip():
                        lines.append(f"            {part.strip()};")
                lines.append(f"        }} {nested.group('name')};")
            lines.append(f"    }} {name};")
            return lines
        dims = "".join(f"[{d}]" for d in ftype.dims)
        stars = "*" * ftype.pointers
        base = self.c_type(ftype.base)
        if stars:
            return [f"    {base} {stars}{name}{dims};"]
        return [f"    {base} {name}{dims};"]

    def struct_body(self, name: str) -> list[str]:
        struct = self.structs[name]
        kind = "union" if is_union(struct) else "struct"
        lines = [f"{kind} {name} {{  /* {struct['size']} bytes */"]
        for field in struct["fields"]:
            lines += self.field_decl(name, field)
        lines.append("};")
        return lines

    def build(self) -> tuple[str, list[str], list[str]]:
        present: list[str] = []
        decls: list[str] = []
        for fname in FUNCTIONS:
            if fname not in self.functions:
                if fname in OPTIONAL_FUNCTIONS:
                    continue
                raise FactsError(f"function {fname} is not in the facts")
            decls.append(self.function_decl(fname))
            present.append(fname)
        for sname in EXTRA_STRUCTS:
            if sname not in self.structs:
                raise FactsError(f"struct {sname} is not in the facts")
            self.visit(sname)
        # Structs reached through callbacks and pointers get full bodies too, so a
        # decoder can read them; loop until no new pointer target appears.
        for proto in list(self.callbacks.values()):
            self.canonical(proto, "callback")
        while self._pointer_only - set(self.order):
            for sname in sorted(self._pointer_only - set(self.order)):
                self.visit(sname)

        out: list[str] = []
        out.append("/* Scalar typedefs of HCNetSDK.h on Linux x86-64 (LONG is 32-bit). */")
        for alias, (ctype, _size) in SCALARS.items():
            out.append(f"typedef {ctype} {alias};")
        out.append("/* Enums the header uses as field or argument types (4-byte int). */")
        for enum in sorted(ENUMS):
            out.append(f"typedef int {enum};")
        out.append("")
        for sname in self.order:
            kind = "union" if is_union(self.structs[sname]) else "struct"
            out.append(f"typedef {kind} {sname} {sname};")
        out.append("")
        out.append("/* Callbacks (LONG arguments are int). */")
        for cb, proto in sorted(self.callbacks.items()):
            fp = _FUNCPTR_RE.match(proto)
            assert fp is not None
            out.append(f"typedef {fp.group('result')} (*{cb})({fp.group('args')});")
        out.append("")
        for sname in self.order:
            out += self.struct_body(sname)
            out.append("")
        out += decls
        return "\n".join(out) + "\n", present, list(self.callbacks)


def verify(cdef: str, structs: dict[str, Any], order: list[str]) -> None:
    """Compile the declarations with cffi and compare every layout with the facts."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    problems: list[str] = []
    for name in order:
        facts = structs[name]
        if ffi.sizeof(name) != facts["size"]:
            problems.append(f"{name}: size {ffi.sizeof(name)} != {facts['size']}")
        if ffi.alignof(name) != facts["align"]:
            problems.append(f"{name}: align {ffi.alignof(name)} != {facts['align']}")
        for field in facts["fields"]:
            offset = ffi.offsetof(name, field["name"])
            if offset != field["offset"]:
                problems.append(f"{name}.{field['name']}: offset {offset} != {field['offset']}")
    if problems:
        raise FactsError("cffi layout differs from the facts:\n  " + "\n  ".join(problems))


def layouts(structs: dict[str, Any], order: list[str]) -> dict[str, Any]:
    return {
        name: {
            "size": structs[name]["size"],
            "align": structs[name]["align"],
            "fields": {f["name"]: f["offset"] for f in structs[name]["fields"]},
        }
        for name in sorted(order)
    }


def select_constants(constants: dict[str, int]) -> dict[str, int]:
    chosen: dict[str, int] = {}
    for name, value in sorted(constants.items()):
        if name.startswith(CONSTANT_PREFIXES) or _is_exception_code(name, value):
            chosen[name] = value
    for name in CONSTANT_NAMES:
        if name not in constants:
            raise FactsError(f"constant {name} is not in the facts")
        chosen[name] = constants[name]
    return chosen


def checked_names(constants: dict[str, int]) -> dict[str, dict[str, int]]:
    """The header's values of the error-code and log-type macros that errors.py names.

    errors.py is written by hand from the guide's chapter 6; here every name that the
    header defines must have the header's value, and the values go to the fixture so the
    tests can check errors.py without the facts file. (The RAID and N+1 error macros are
    expressions in the header, absent from the facts: only the guide gives those.)"""
    # Load errors.py by path: importing the hikd.sdk package could load the very
    # _cdef.py this script is about to replace.
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("_hikd_sdk_errors", ROOT / "hikd/sdk/errors.py")
    if spec is None or spec.loader is None:
        raise FactsError("cannot load hikd/sdk/errors.py")
    errors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(errors)

    problems: list[str] = []
    found: dict[str, dict[str, int]] = {"error_codes": {}, "log_types": {}}
    names: list[tuple[str, str, int]] = [
        ("error_codes", name, code) for code, name in errors.ERROR_NAMES.items()
    ]
    names += [("log_types", name, value) for value, name in errors.LOG_MAJOR_MACROS.items()]
    for minors in errors.LOG_MINOR_MACROS.values():
        names += [("log_types", name, value) for value, name in minors.items()]
    for kind, name, value in names:
        if name not in constants:
            continue
        if constants[name] != value:
            problems.append(f"errors.py: {name} is {value}, the header says {constants[name]}")
        found[kind][name] = constants[name]
    if problems:
        raise FactsError("\n  ".join(problems))
    return found


def _format_value(name: str, value: int) -> str:
    if name.startswith(("COMM_", "EXCEPTION_")) or name in EXCEPTION_CALLBACK_EXTRA:
        return f"0x{value:04X}"
    return str(value)


def render_constants(chosen: dict[str, int]) -> str:
    lines = [
        '"""Named integers of the vendor SDK that hikd uses.',
        "",
        "GENERATED by tools/gen_sdk_cdef.py from the header facts; do not edit by hand.",
        "Values from HCNetSDK.h are checked by tests/sdk/test_abi.py against",
        "tests/fixtures/abi_constants.json; the few that the header does not define",
        "(enum members, guide-only values) say where they come from.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        "# ---- from HCNetSDK.h " + "-" * 70,
    ]
    for name, value in chosen.items():
        lines.append(f"{name}: Final = {_format_value(name, value)}")
    lines.append("")
    lines.append("# ---- not in the header facts " + "-" * 62)
    for name, value, source in CONSTANT_SUPPLEMENT:
        lines.append(f"# {source}")
        lines.append(f"{name}: Final = {_format_value(name, value)}")
    lines.append("")
    comm = {n: v for n, v in chosen.items() if n.startswith("COMM_")}
    comm["COMM_ALARM_ERROR_MESSAGE"] = 0x7FFF
    exc = {n: v for n, v in chosen.items() if _is_exception_code(n, v)}
    lines.append("")
    lines.append("# lCommand value -> macro name, to log a command hikd cannot decode yet.")
    lines.append("COMMAND_NAMES: Final[dict[int, str]] = {")
    for name, value in sorted(comm.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f'    {_format_value(name, value)}: "{name}",')
    lines.append("}")
    lines.append("")
    lines.append("# Exception callback dwType value -> macro name.")
    lines.append("EXCEPTION_NAMES: Final[dict[int, str]] = {")
    for name, value in sorted(exc.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f'    {_format_value(name, value)}: "{name}",')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_cdef_module(
    cdef: str, functions: list[str], structs: list[str], callbacks: list[str]
) -> str:
    def tuple_lines(name: str, items: list[str]) -> list[str]:
        return [f"{name}: tuple[str, ...] = ("] + [f'    "{i}",' for i in items] + [")"]

    lines = [
        '"""cffi declarations (ABI mode) of the vendor SDK, libhcnetsdk.so, for Linux x86-64.',
        "",
        "GENERATED by tools/gen_sdk_cdef.py from the header facts; do not edit by hand.",
        "Every struct layout here was compared with the header's (clang) layout when",
        "generated; tests/sdk/test_abi.py compares them again against",
        "tests/fixtures/abi_layouts.json.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        'CDEF = """',
        cdef.rstrip("\n"),
        '"""',
        "",
    ]
    lines += tuple_lines("FUNCTIONS", functions)
    lines.append("")
    lines += tuple_lines("STRUCTS", structs)
    lines.append("")
    lines += tuple_lines("CALLBACKS", sorted(callbacks))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("facts", type=Path, help="hcnetsdk-linux-x64.json (header facts)")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root to write into")
    args = parser.parse_args(argv)
    try:
        facts = json.loads(args.facts.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read the facts file {args.facts}: {exc}", file=sys.stderr)
        return 2
    try:
        gen = Generator(facts)
        cdef, functions, callbacks = gen.build()
        verify(cdef, gen.structs, gen.order)
        chosen = select_constants(gen.constants)
        checked = checked_names(gen.constants)
    except FactsError as exc:
        print(f"gen_sdk_cdef: {exc}", file=sys.stderr)
        return 1
    root: Path = args.root
    (root / "hikd/sdk").mkdir(parents=True, exist_ok=True)
    (root / "tests/fixtures").mkdir(parents=True, exist_ok=True)
    (root / "hikd/sdk/_cdef.py").write_text(
        render_cdef_module(cdef, functions, gen.order, callbacks), encoding="utf-8"
    )
    (root / "hikd/sdk/constants.py").write_text(render_constants(chosen), encoding="utf-8")
    from gen_sdk_ffi import TARGET, render  # next to this script, on sys.path when run

    (root / TARGET).write_text(render(cdef), encoding="utf-8")
    (root / "tests/fixtures/abi_layouts.json").write_text(
        json.dumps(layouts(gen.structs, gen.order), indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    (root / "tests/fixtures/abi_constants.json").write_text(
        json.dumps({"constants": chosen, **checked}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    print(
        f"declared {len(gen.order)} structs, {len(functions)} functions,"
        f" {len(callbacks)} callbacks, {len(chosen)} constants"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
