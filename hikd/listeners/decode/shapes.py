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

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_TEXT = "[^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]*"
_LEAF = re.compile(rf"<({_NAME})>({_TEXT})</\1>")
_MARKER = re.compile("\ue000([0-9]+)\ue001")  # private-use characters: never markup

MAX_SHAPES = 16
"""Shapes kept (most recently used first); a device sends a handful."""
_LEARN_AFTER = 2
"""Times a shape must come before it is compiled (compiling costs ~100 parses)."""
_MAX_SEEN = 256
"""Distinct shapes counted before the counts start over (bounds memory)."""
_KEEP_ORDER = 4
"""A match among the first few shapes does not reorder them (alerts of a few shapes
alternate; a miss costs only the characters up to the first difference)."""


class _Slot(NamedTuple):
    """Where a group's text goes: group `index`, converted as a leaf called `name`."""

    index: int
    name: str


class _Shape(NamedTuple):
    pattern: re.Pattern[str]
    tree: dict[str, Any]
    """The body's plan with a `_Slot` where each group's leaf goes."""
    converted: tuple[_Slot, ...]
    """The groups whose text the leaf conversion applies to (by their leaf's name)."""


ElementDict = Callable[[ET.Element], dict[str, Any]]
Leaf = Callable[[str, str], Any]
Plan = Callable[[dict[str, Any]], dict[str, Any]]


class AlertShapes:
    """Reads alert bodies of known shapes; learns the shapes of bodies it is shown.

    `element_dict` is the decoder's own element-to-dict function and `leaf` its leaf
    conversion (applied to the names in `converted`). `plan` derives what the decoder
    wants from that dict (a dict of dicts, lists and leaves) and must place each leaf
    value by the dict's keys and nesting alone, never looking at the value. Then for a
    body read here ``read(source) == plan(element_dict(root of source))``. Thread-safe."""

    def __init__(
        self,
        element_dict: ElementDict,
        leaf: Leaf,
        converted: Collection[str],
        root: str,
        plan: Plan,
    ) -> None:
        self._element_dict = element_dict
        self._leaf = leaf
        self._converted = frozenset(converted)
        self._root = root
        self._plan = plan
        self._lock = threading.Lock()
        self._shapes: tuple[_Shape, ...] = ()
        self._seen: dict[str, int] = {}

    def read(self, source: str) -> dict[str, Any] | None:
        """The plan of `source` if it has a known shape, else None."""
        shapes = self._shapes
        for i, shape in enumerate(shapes):
            match = shape.pattern.fullmatch(source)
            if match is None:
                continue
            if i >= _KEEP_ORDER:
                self._to_front(shape)
            values: list[Any] = [text.strip() for text in match.groups()]
            leaf = self._leaf
            for index, name in shape.converted:
                values[index] = leaf(name, values[index])
            return _fill(shape.tree, values)
        return None

    def learn(self, source: str, root: ET.Element) -> None:
        """`source` parsed into `root` without error: count its shape, and compile the
        shape when it has come often enough."""
        if "&" in source or "<!" in source or "<?" in source or "\ue000" in source:
            return
        if not isinstance(root.tag, str) or root.tag.rsplit("}", 1)[-1] != self._root:
            return
        skeleton = _LEAF.sub(r"<\1></\1>", source)
        with self._lock:
            if len(self._seen) >= _MAX_SEEN:
                self._seen.clear()
            seen = self._seen[skeleton] = self._seen.get(skeleton, 0) + 1
            if seen != _LEARN_AFTER:
                return
        shape = self._compile(source)
        if shape is not None:
            with self._lock:
                self._shapes = (shape, *self._shapes)[:MAX_SHAPES]

    def __len__(self) -> int:
        return len(self._shapes)

    def clear(self) -> None:
        with self._lock:
            self._shapes = ()
            self._seen.clear()

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
        tree = _slots_in(self._element_dict(root), found)
        if tree is None or sorted(found) != list(range(len(found))):
            return None
        pattern = re.compile("".join(parts))
        if pattern.groups != len(found):
            return None
        converted = tuple(found[i] for i in range(len(found)) if found[i].name in self._converted)
        return _Shape(pattern, self._plan(tree), converted)


def _slots_in(tree: dict[str, Any], found: dict[int, _Slot]) -> dict[str, Any] | None:
    """`tree` with each marker text replaced by its `_Slot`; None if a marker is anywhere
    but alone in a leaf, or comes twice."""
    out: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, list):
            items = []
            for item in value:
                slot = _slot_value(name, item, found)
                if slot is None:
                    return None
                items.append(slot)
            out[name] = items
        else:
            slot = _slot_value(name, value, found)
            if slot is None:
                return None
            out[name] = slot
    return out


def _slot_value(name: str, value: Any, found: dict[int, _Slot]) -> Any:
    if isinstance(value, dict):
        return _slots_in(value, found)
    if not isinstance(value, str) or "\ue000" not in value:
        return value
    marker = _MARKER.fullmatch(value)
    if marker is None:
        return None
    index = int(marker.group(1))
    if index in found:
        return None
    found[index] = _Slot(index, name)
    return found[index]


def _fill(tree: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in tree.items():
        kind = type(value)
        if kind is _Slot:
            out[name] = values[value.index]
        elif kind is dict:
            out[name] = _fill(value, values)
        elif kind is list:
            out[name] = _fill_list(value, values)
        else:
            out[name] = value
    return out


def _fill_list(items: list[Any], values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in items:
        kind = type(value)
        if kind is _Slot:
            out.append(values[value.index])
        elif kind is dict:
            out.append(_fill(value, values))
        elif kind is list:
            out.append(_fill_list(value, values))
        else:
            out.append(value)
    return out
