"""The house rules of hikd/, read from its imports (README "Development: the layout").

Each folder of hikd/ is one layer; a module imports only its own layer and the layers below
it, nothing outside hikd/sdk/ imports cffi, no two modules import each other (directly or
round a longer circle), and no file grows past ~400 lines. Every import counts, also one
inside a function or under ``TYPE_CHECKING``: a circle that only type checkers see is still
a circle for the reader.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from hikd.sdk._cdef import CDEF

ROOT = Path(__file__).resolve().parents[1] / "hikd"

CORE = {
    "hikd",
    "hikd.addresses",
    "hikd.commands",
    "hikd.config",
    "hikd.errors",
    "hikd.event_types",
    "hikd.events",
    "hikd.files",
    "hikd.health",
    "hikd.isapi_xml",
    "hikd.lazy_imports",
    "hikd.logs",
    "hikd.plain_config",
    "hikd.native_stderr",
    "hikd.sqlite_setup",
    "hikd.state",
    "hikd.systemd",
    "hikd.xml_edit",
}
"""Shared by every layer: the event model, errors, logging, files, configuration."""

# What each part of hikd may import besides itself and the core. The data flows one way:
# device -> sdk -> devices -> listeners/jobs -> events -> delivery (outbox) -> sinks.
MAY_IMPORT: dict[str, set[str]] = {
    "hikd.sdk": set(),
    "hikd.devices": {"hikd.sdk"},
    "hikd.listeners": {"hikd.sdk", "hikd.devices", "hikd.delivery"},
    "hikd.jobs": {"hikd.sdk", "hikd.devices", "hikd.delivery"},
    "hikd.recorders": {"hikd.sdk", "hikd.devices", "hikd.jobs"},
    "hikd.doctor": {"hikd.sdk", "hikd.devices", "hikd.listeners", "hikd.jobs", "hikd.recorders"},
    "hikd.sinks": set(),
    "hikd.delivery": {"hikd.sinks"},
    "hikd.hosts": {
        "hikd.sdk",
        "hikd.devices",
        "hikd.listeners",
        "hikd.jobs",
        "hikd.recorders",
        "hikd.delivery",
    },
    "hikd.observe": {"hikd.delivery", "hikd.sinks"},
    "hikd.daemon": {
        "hikd.hosts",
        "hikd.sdk",
        "hikd.devices",
        "hikd.listeners",
        "hikd.jobs",
        "hikd.recorders",
        "hikd.delivery",
        "hikd.sinks",
        "hikd.observe",
    },
    "hikd.cli": {
        "hikd.sdk",
        "hikd.devices",
        "hikd.listeners",
        "hikd.jobs",
        "hikd.recorders",
        "hikd.delivery",
        "hikd.sinks",
        "hikd.daemon",
        "hikd.doctor",
        "hikd.hosts",
        "hikd.observe",
        "hikd.sim",
    },
    "hikd.sim": set(),
}

MAX_LINES = 420
TABLES = {"hikd/sdk/_cdef.py", "hikd/sdk/constants.py", "hikd/sdk/errors.py"}
"""Generated from the vendor's header (tools/gen_sdk_cdef.py), or the table of its error
codes (guide chapter 6): long by nature, one entry a line."""
NOT_SPLIT_YET: dict[str, int] = {}
"""Files over the limit today, with their length: they may shrink, not grow (split one
before adding to it)."""


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


@cache
def imports_of(name: str) -> frozenset[str]:
    """The modules of hikd (and cffi) that `name` imports, anywhere in its text."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(
        m
        for m in found
        if (m in MODULES and m != name and not name.startswith(m + "."))
        or m.split(".")[0] == "cffi"
    )


def part_of(name: str) -> str:
    """The layer a module belongs to: its top folder under hikd/, or the core."""
    if name in CORE or name.startswith("hikd.config."):
        return "core"
    if name == "hikd.__main__":  # ``python -m hikd``: the command line
        return "hikd.cli"
    top = ".".join(name.split(".")[:2])
    assert top in MAY_IMPORT, f"{name}: not in a layer; add its folder to MAY_IMPORT"
    return top


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for name in sorted(MODULES):
        part = part_of(name)
        for imported in sorted(imports_of(name)):
            if imported.startswith("cffi"):
                continue
            other = part_of(imported)
            allowed = other in ("core", part) or (
                part != "core" and other in MAY_IMPORT.get(part, set())
            )
            if not allowed:
                wrong.append(f"{name} imports {imported} ({part} may not use {other})")
    assert not wrong, "\n".join(wrong)


def test_cffi_only_in_the_sdk() -> None:
    """cffi, the FFI and the vendor's declarations (its struct layouts) stay in hikd/sdk/."""
    vendor = ("cffi", "hikd.sdk.ffi", "hikd.sdk._cdef")
    wrong = [
        f"{name} imports {imported}"
        for name in sorted(MODULES)
        if not name.startswith("hikd.sdk")
        for imported in sorted(imports_of(name))
        if imported.startswith(vendor)
    ]
    said = "\n".join(wrong)
    assert not wrong, f"only hikd/sdk/ may use cffi and the vendor's declarations:\n{said}"


STRUCT_FIELDS = frozenset(
    name
    for body in re.findall(r"\{([^{}]*)\}", CDEF)
    for name in re.findall(r"(\w+)\s*(?:\[[^\]]*\]\s*)*;", body)
    if re.match(r"[a-z]{1,4}[A-Z0-9]", name)
)
"""The vendor's struct fields (``dwAlarmType``, ``struDevInfo``, ``sIpV4`` ...), by their
Hungarian prefixes, from the declarations hikd/sdk/ gives cffi."""


def test_struct_layouts_only_in_the_sdk() -> None:
    """Outside hikd/sdk/ nothing reads a struct field (an attribute, or a name in quotes
    for getattr): the SDK package reads structs into plain dataclasses."""
    wrong = []
    for name, path in sorted(MODULES.items()):
        if name.startswith("hikd.sdk"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in STRUCT_FIELDS:
                wrong.append(f"{name}:{node.lineno} reads {node.attr}")
            elif isinstance(node, ast.Constant) and node.value in STRUCT_FIELDS:
                wrong.append(f"{name}:{node.lineno} names {node.value}")
    assert STRUCT_FIELDS, "no struct field found in hikd/sdk/_cdef.py"
    assert not wrong, "read structs in hikd/sdk/ into dataclasses:\n" + "\n".join(wrong)


def _circles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in imports_of(v):
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    return found


def test_no_import_circle() -> None:
    circles = _circles()
    assert not circles, f"modules that import each other (directly or round a circle): {circles}"


def test_no_file_over_400_lines() -> None:
    too_long = {}
    for path in MODULES.values():
        name = str(path.relative_to(ROOT.parent))
        lines = len(path.read_text().splitlines())
        if name not in TABLES and lines > NOT_SPLIT_YET.get(name, MAX_LINES):
            too_long[name] = lines
    assert not too_long, f"split these files by concern (at most ~400 lines): {too_long}"


def test_nothing_imports_the_command_line() -> None:
    """The daemon (and every layer) works without hikd/cli/: the command line is the top."""
    wrong = [
        f"{name} imports {imported}"
        for name in sorted(MODULES)
        if part_of(name) != "hikd.cli"
        for imported in sorted(imports_of(name))
        if imported.startswith("hikd.cli")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_command_line_parser_loads_no_command() -> None:
    """Building ``hikd``'s parser imports no command's work (configuration models, the
    vendor library, the daemon, the simulator): a command module imports those inside its
    handler, so ``hikd --help`` and each command start fast (README "Development")."""
    code = (
        "import sys; from hikd.cli.main import build_parser; build_parser(); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('hikd', 'pydantic', 'cffi', 'paho', 'apscheduler'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    allowed = {"hikd", "hikd.errors"}
    heavy = [m for m in loaded if m not in allowed and not m.startswith("hikd.cli")]
    assert not heavy, f"import these inside the command's handler: {heavy}"
