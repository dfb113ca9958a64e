"""Alert bodies a device repeats, read without parsing them again.

A device sends the same XML alert over and over with only the texts of some leaves
changed (time, state, channel, counters). Parsing each with ElementTree costs more than
everything else hikd does with an alert, so once a body's *shape* has come twice,
`AlertShapes` turns it into one regular expression: the body's markup as literal text and
a group for each leaf text. A later body that matches is the same document with other
leaf texts, and its dict is the shape's dict with those texts filled in. Anything else
(another shape, markup in a text, an entity, a comment) does not match and is parsed as
before.

Why a match gives exactly what parsing would:

* Shapes are only made from bodies without ``&`` (entities), ``<!`` (comments, CDATA,
  DOCTYPE) or ``<?`` (processing instructions) that parsed without error. In such a
  document every ``<`` starts a tag, so each ``<name>text</name>`` found by `_LEAF` is an
  element whose only content is that text.
* A group accepts only characters that XML takes as they are in a text: no ``<``, ``>``,
  ``&``, no ``\\r`` (the parser would turn line ends into ``\\n``), none of the characters
  XML forbids. Filling such texts into a well-formed document keeps it well-formed and
  changes nothing in its tree but those texts.
* Which entry of the dict each group fills is not worked out from the regex: the shape's
  document is parsed with a marker text in every group, and each marker is looked up
  where the parser put it. A shape whose markers do not come out exactly once each (a
  depth cut-off, say) is not used.
"""

from __future__ import annotations

import operator
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_TEXT = "[^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*"
_LEAF = re.compile(rf"<({_NAME})>({_TEXT})</\1>")
_MARKER = re.compile("\ue000([0-9]+)\ue001")  # private-use characters: never markup

MAX_SHAPES = 32
"""Shapes kept, recently used first (a device sends a few: one per kind of alert)."""
_LEARN_AFTER = 2
"""Times a shape must come before it is compiled (compiling costs ~200 parses)."""
_HITS_PER_COMPILE = 1000
"""Past the first MAX_SHAPES compiles, one more per this many bodies read: bodies of
ever new shapes, or more shapes than are kept, cannot make hikd compile all the time."""
_MAX_SEEN = 256
"""Distinct shapes counted before the counts start over (bounds memory)."""
_NEVER = -(1 << 62)
"""The count of a shape that cannot be compiled (so it is not tried again)."""
_KEEP_ORDER = 4
"""A match among the first few shapes does not reorder them (alerts of a few shapes
alternate; a miss costs only the characters up to the first difference)."""
MAX_SOURCE = 16 * 1024
"""Bodies longer than this are never compiled: compiling costs with the length of the
markup and the number of leaves (a 1.2 MB description blocked the decoder thread for
seconds, issue 8 item 10); devices' alerts are a few kB, region lists included."""
MAX_LEAVES = 256
"""Bodies with more leaves than this are never compiled (one regex group per leaf)."""


class _Slot(NamedTuple):
    """Where a group's text goes: `group`, converted as a leaf called `name`."""

    group: int
    name: str


_Build = tuple[tuple[str, ...] | None, Callable[[list[Any]], Sequence[Any]]]
_Refs = tuple[tuple[str, ...] | None, list[tuple[str, int]]]


class _Shape(NamedTuple):
    """A compiled shape. Reading a body builds a list of values: the group texts, then
    `constants`, then one dict or list per entry of `builds` (each made of values before
    it); the last one is the plan."""

    pattern: re.Pattern[str]
    constants: list[Any]
    """The plan's leaves that are not group texts (fixed texts, flags)."""
    wholes: tuple[Callable[[list[Any]], Sequence[str]], tuple[str, ...]] | None
    """What picks the texts of the groups named in `wholes`, and their names; their
    values follow the constants."""
    others: tuple[tuple[int, str], ...]
    """(group, name) of the other converted groups; their values follow."""
    builds: tuple[_Build, ...]
    """(keys of a dict, or None for a list; what picks its values), children first."""


ElementDict = Callable[[ET.Element], dict[str, Any]]
Leaf = Callable[[str, str], Any]
Plan = Callable[[dict[str, Any]], dict[str, Any]]


class AlertShapes:
    """Reads alert bodies of known shapes; learns the shapes of bodies it is shown.

    `element_dict` is the decoder's own element-to-dict function and `leaf` its leaf
    conversion (applied to the names in `converted`; for those in `wholes` it must give
    ``int(text)`` for up to 19 decimal digits, which is then done without calling it).
    `plan` derives what the decoder wants from that dict (a dict of dicts, lists and
    leaves) and must place each leaf value by the dict's keys and nesting alone, never
    looking at the value. Then for a body read here
    ``read(source) == plan(element_dict(root of source))``. Thread-safe."""

    def __init__(
        self,
        element_dict: ElementDict,
        leaf: Leaf,
        converted: Collection[str],
        wholes: Collection[str],
        root: str,
        plan: Plan,
    ) -> None:
        self._element_dict = element_dict
        self._leaf = leaf
        self._converted = frozenset(converted)
        self._wholes = frozenset(wholes)
        self._root = root
        self._plan = plan
        self._lock = threading.Lock()
        self._shapes: tuple[_Shape, ...] = ()
        self._seen: dict[str, int] = {}
        self._hits = 0
        self._compiles = 0

    def read(self, source: str) -> dict[str, Any] | None:
        """The plan of `source` if it has a known shape, else None."""
        shapes = self._shapes
        for i, shape in enumerate(shapes):
            match = shape.pattern.fullmatch(source)
            if match is None:
                continue
            self._hits += 1  # unlocked: a lost count only delays the next compile
            if i >= _KEEP_ORDER:
                self._to_front(shape)
            values: list[Any] = list(map(str.strip, match.groups()))
            values += shape.constants
            leaf = self._leaf
            if shape.wholes is not None:
                pick, names = shape.wholes
                texts = pick(values)
                if (
                    "".join(texts).isdecimal()
                    and min(map(len, texts)) > 0
                    and max(map(len, texts)) <= 19
                ):
                    values += map(int, texts)  # what `leaf` gives for these, at C speed
                else:
                    values += [leaf(name, text) for name, text in zip(names, texts, strict=True)]
            values += [leaf(name, values[group]) for group, name in shape.others]
            add = values.append
            for keys, pick in shape.builds:
                # The keys and the picked values match by construction (strict costs).
                add(
                    list(pick(values))
                    if keys is None
                    else dict(zip(keys, pick(values), strict=False))
                )
            plan: dict[str, Any] = values[-1]
            return plan
        return None

    def learn(self, source: str, root: ET.Element) -> None:
        """`source` parsed into `root` without error: count its shape, and compile the
        shape when it has come often enough."""
        if len(source) > MAX_SOURCE:
            return
        if "&" in source or "<!" in source or "<?" in source or "\ue000" in source:
            return
        if not isinstance(root.tag, str) or root.tag.rsplit("}", 1)[-1] != self._root:
            return
        skeleton, leaves = _LEAF.subn(r"<\1></\1>", source)
        if leaves > MAX_LEAVES:
            return
        with self._lock:
            if len(self._seen) >= _MAX_SEEN:
                self._seen.clear()
            seen = self._seen[skeleton] = self._seen.get(skeleton, 0) + 1
            allowed = MAX_SHAPES + self._hits // _HITS_PER_COMPILE
            if seen < _LEARN_AFTER or self._compiles >= allowed:
                return
            self._compiles += 1
            del self._seen[skeleton]  # counted afresh should the shape be dropped later
        shape = self._compile(source)
        with self._lock:
            if shape is None:
                self._seen[skeleton] = _NEVER
            else:
                self._shapes = (shape, *self._shapes)[:MAX_SHAPES]

    def __len__(self) -> int:
        return len(self._shapes)

    def clear(self) -> None:
        """Forget every shape (and what was counted)."""
        with self._lock:
            self._shapes = ()
            self._seen.clear()
            self._hits = self._compiles = 0

    def _to_front(self, shape: _Shape) -> None:
        with self._lock:
            if shape in self._shapes:
                self._shapes = (shape, *(s for s in self._shapes if s is not shape))

    def _compile(self, source: str) -> _Shape | None:
        parts: list[str] = []
        marked: list[str] = []
        pos = 0
        for i, leaf in enumerate(_LEAF.finditer(source)):
            fixed = source[pos : leaf.start(2)]
            parts += (re.escape(fixed), f"({_TEXT})")
            marked += (fixed, f"\ue000{i}\ue001")
            pos = leaf.end(2)
        parts.append(re.escape(source[pos:]))
        marked.append(source[pos:])
        try:
            root = ET.fromstring("".join(marked))
        except ET.ParseError:
            return None
        if not isinstance(root.tag, str) or root.tag.rsplit("}", 1)[-1] != self._root:
            return None
        found: dict[int, _Slot] = {}
        try:
            tree = _slots_in(self._element_dict(root), found)
        except _NotAShape:
            return None
        pattern = re.compile("".join(parts))
        if sorted(found) != list(range(pattern.groups)):
            return None  # a marker the parser did not keep (cut off below the depth limit)
        slots = [found[i] for i in range(len(found))]
        wholes = [slot for slot in slots if slot.name in self._wholes]
        others = [s for s in slots if s.name in self._converted and s.name not in self._wholes]
        constants, builds = _builds(self._plan(tree))
        # The values of a body, in order: the group texts, the constants, the whole
        # numbers, the other conversions, the builds. A converted group's value is its
        # conversion, not its text.
        start = {
            "group": 0,
            "constant": len(slots),
            "build": len(slots) + len(constants) + len(wholes) + len(others),
        }
        converted_at = len(slots) + len(constants)
        group_at = {slot.group: slot.group for slot in slots}
        group_at.update((s.group, converted_at + i) for i, s in enumerate([*wholes, *others]))

        def at(kind: str, i: int) -> int:
            return group_at[i] if kind == "group" else start[kind] + i

        return _Shape(
            pattern,
            constants,
            (_picker([s.group for s in wholes]), tuple(s.name for s in wholes)) if wholes else None,
            tuple((s.group, s.name) for s in others),
            tuple((keys, _picker([at(*r) for r in refs])) for keys, refs in builds),
        )


class _NotAShape(Exception):
    """A marker text came out anywhere but alone in a leaf, or twice."""


def _slots_in(tree: dict[str, Any], found: dict[int, _Slot]) -> dict[str, Any]:
    """`tree` with each marker text replaced by its `_Slot` (noted in `found`)."""
    return {
        name: [_slot_value(name, item, found) for item in value]
        if isinstance(value, list)
        else _slot_value(name, value, found)
        for name, value in tree.items()
    }


def _slot_value(name: str, value: Any, found: dict[int, _Slot]) -> Any:
    if isinstance(value, dict):
        return _slots_in(value, found)
    if not isinstance(value, str) or "\ue000" not in value:
        return value
    marker = _MARKER.fullmatch(value)
    if marker is None:
        raise _NotAShape(value)
    group = int(marker.group(1))
    if group in found:
        raise _NotAShape(value)
    found[group] = _Slot(group, name)
    return found[group]


def _builds(plan: dict[str, Any]) -> tuple[list[Any], list[_Refs]]:
    """The constants of a plan with `_Slot` leaves (its other leaves), and its dicts and
    lists, children first, each as its keys (None for a list) and its values as
    ("group", group), ("constant", i) or ("build", i). A dict or list the plan holds in
    two places is built once and is one object in both, as in the plan."""
    constants: list[Any] = []
    builds: list[_Refs] = []
    built: dict[int, tuple[str, int]] = {}  # id() of a dict or list of the plan -> its build

    def ref(value: Any) -> tuple[str, int]:
        kind = type(value)
        if kind is _Slot:
            return "group", value.group
        if kind is not dict and kind is not list:
            constants.append(value)
            return "constant", len(constants) - 1
        if id(value) not in built:
            if kind is dict:
                builds.append((tuple(value), [ref(v) for v in value.values()]))
            else:
                builds.append((None, [ref(v) for v in value]))
            built[id(value)] = ("build", len(builds) - 1)
        return built[id(value)]

    ref(plan)
    return constants, builds


def _picker(indexes: list[int]) -> Callable[[list[Any]], Sequence[Any]]:
    """What takes the values at `indexes` from a list, as a sequence (itemgetter gives a
    bare value for one index, so one or none is a slice)."""
    if len(indexes) > 1:
        return operator.itemgetter(*indexes)
    if indexes:
        return operator.itemgetter(slice(indexes[0], indexes[0] + 1))
    return operator.itemgetter(slice(0, 0))
