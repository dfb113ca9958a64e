"""The pieces of the simulated event set-up's documents: a trigger and its linkage entries,
alarm host slots, and the check that a write kept every element of the device's document."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hikd.isapi_xml import key
from hikd.sim import documents
from hikd.sim.documents import elements


@dataclass
class Trigger:
    id: str
    event_type: str
    source: tuple[str, int] | None
    """The element naming the channel or input, and its value."""
    notifications: list[dict[str, str]] = field(default_factory=list)


def usable(host: dict[str, str]) -> bool:
    """A slot that names an address and port the device can push to over plain HTTP."""
    try:
        address = ipaddress.ip_address(host.get("ipAddress", ""))
        port = int(host.get("portNo", "0"))
    except ValueError:
        return False
    plain = host.get("protocolType", "HTTP").upper() == "HTTP"
    return plain and not address.is_unspecified and 0 < port < 65536


def entries(trigger: Trigger) -> str:
    return "".join(
        f"<EventTriggerNotification>\n{elements(**n)}</EventTriggerNotification>\n"
        for n in trigger.notifications
    )


def with_center(trigger: Trigger, on: bool) -> None:
    trigger.notifications = [
        n for n in trigger.notifications if n.get("notificationMethod") != "center"
    ]
    if on:
        trigger.notifications.append(center())


def center() -> dict[str, str]:
    return {"id": "center", "notificationMethod": "center", "notificationRecurrence": "beginning"}


def http_host(slot: int) -> dict[str, str]:
    return {
        "id": str(slot),
        "url": "/",
        "protocolType": "HTTP",
        "parameterFormatType": "XML",
        "addressingFormatType": "ipaddress",
        "ipAddress": "0.0.0.0",
        "portNo": "80",
        "httpAuthenticationMethod": "none",
    }


NAMES = {
    n.lower(): n
    for n in [
        "id",
        "notificationMethod",
        "notificationRecurrence",
        "videoInputID",
        "dynVideoInputID",
        "url",
        "protocolType",
        "parameterFormatType",
        "addressingFormatType",
        "ipAddress",
        "hostName",
        "portNo",
        "httpAuthenticationMethod",
        "userName",
    ]
}


def spelled(name: str) -> str:
    """A key of `hikd.isapi_xml.fields` (lower case) in the device's own spelling."""
    return NAMES.get(name, name)


def paths(root: ET.Element, leaves_only: bool = False) -> set[tuple[str, ...]]:
    """The paths (local names, case ignored) of the elements under `root` (only of its
    leaves with `leaves_only`): a write must keep every leaf of the device's document."""
    out: set[tuple[str, ...]] = set()

    def walk(element: ET.Element, path: tuple[str, ...]) -> None:
        for child in element:
            here = (*path, key(child.tag))
            if len(child):
                walk(child, here)
            if not (leaves_only and len(child)):
                out.add(here)

    walk(root, ())
    return out


def bad_content(url: str) -> bytes:
    return documents.response_status(url, 6, "Invalid XML Content", "badXmlContent")
