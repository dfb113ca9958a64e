"""How a simulated device writes the documents hikd reads: the spellings real devices use.

hikd.sim writes one spelling of each document by default; real firmware differs (devices'
captures in hikvision_next's tests, the ISAPI guide): no namespace or another one, elements
in another order, elements of its own, names in other case, alarm ports as
``<ioPortID>`` + ``<ioPortType>`` or ``<inputPort>``, workingstatus as XML whatever was
asked, IP channels numbered from 33, alerts naming channels by another number. Each is a
knob here, so tests can run hikd and the real library against every spelling.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

IoPortId = Literal["inputIOPortID", "ioPortID", "inputPort", "id"]


class DocumentVariants(BaseModel):
    """Per device; every default is hikd.sim's original spelling."""

    model_config = ConfigDict(extra="forbid")

    namespace: bool = True
    """Documents carry their xmlns (False: plain names, as some firmware writes them)."""
    reordered: bool = False
    """Every element's children in reverse order, plus an ``<Extensions>`` element of
    unknown content (whose leaves repeat names of real fields) in each."""
    lower_case: bool = False
    """Every element and JSON key name in lower case."""
    io_status: Literal["inputs", "all"] = "inputs"
    """``inputs``: /ISAPI/System/IO/inputs/status lists the inputs. ``all``: that URL is
    missing and /ISAPI/System/IO/status lists inputs and outputs, each with ioPortType."""
    io_port_id: IoPortId = "inputIOPortID"
    """The element that numbers a port in an IO status list."""
    working_status: Literal["json", "xml"] = "json"
    """``xml``: /ISAPI/System/workingstatus answers XML even when asked for JSON."""
    ip_channel_first_id: int = Field(default=0, ge=0, le=512)
    """The device's id of its first IP channel (0: right after the analog channels): the
    InputProxy ids, stream and track ids (``<id>01``) and alerts' <channelID> follow it."""
    alert_channel: Literal["id", "private", "dyn"] = "id"
    """What alerts name a channel by: ``id``: <channelID> with the device's id; ``private``:
    <channelID> with the private protocol's number (IP channels 33 and up, as some NVR
    firmware sends); ``dyn``: <dynChannelID> with the device's id."""


def restyle_xml(body: bytes, variants: DocumentVariants) -> bytes:
    """`body` (a document of the simulator's) written the way `variants` say."""
    if variants.namespace and not variants.reordered and not variants.lower_case:
        return body
    root = ET.fromstring(body)
    everything = list(root.iter())
    namespace = ""
    for element in everything:
        # Names are handled without their namespace; the root gets it back as text (ET
        # would write prefixes, which no device does).
        ns, _, name = element.tag.rpartition("}")
        namespace = namespace or ns.lstrip("{")
        element.tag = name.lower() if variants.lower_case else name
    if variants.reordered:
        for element in everything:
            if len(element) == 0:
                continue
            children = list(element)
            element[:] = children[::-1]
            extra = ET.SubElement(element, "Extensions")
            for child in children:
                if len(child) == 0:  # the same names, nested: a reader must not take them
                    ET.SubElement(extra, child.tag).text = "999"
    text = ET.tostring(root, encoding="unicode")
    if variants.namespace and namespace:
        text = text.replace(f"<{root.tag}", f'<{root.tag} xmlns="{namespace}"', 1)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode()


def restyle_json(data: Any, variants: DocumentVariants) -> Any:
    """A JSON document of the simulator's written the way `variants` say."""
    if isinstance(data, list):
        return [restyle_json(item, variants) for item in data]
    if not isinstance(data, dict):
        return data
    items = [
        (k.lower() if variants.lower_case else k, restyle_json(v, variants))
        for k, v in data.items()
    ]
    if variants.reordered:
        # The same names, nested, with other values: a reader must not take them.
        leaves = {k: 999 for k, v in items if not isinstance(v, (dict, list))}
        items = [*items[::-1], ("Extensions", leaves)]
    return dict(items)


def json_body(data: Any, variants: DocumentVariants) -> bytes:
    return json.dumps(restyle_json(data, variants)).encode()
