"""``hikd doctor --fix``: the changes that make a device send its events to hikd.

Only two kinds, and both only add: "notify surveillance center" in the linkage of each
trigger whose detection is not off (``/ISAPI/Event/triggers/<id>/notifications``, or the
trigger document itself on firmware without that URL), and the HTTP alarm host for listen
mode (``/ISAPI/Event/notification/httpHosts``). Each change is the device's own document,
fetched now and edited in place (`hikd.doctor.xml_edit`); a second run finds nothing to do.

Without ``--yes`` nothing is written: the report lists each request and the exact change.
With it, the device's configuration file is saved first, the way the configuration-backup
job saves it (`export_configuration`, `store_export`); no backup, no change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hikd.devices.capabilities.config_export import export_configuration
from hikd.doctor.device_side import HTTP_HOSTS_URL, AlarmHostPlan
from hikd.doctor.linkage import Linkage
from hikd.doctor.report import Change, Check, DeviceReport
from hikd.doctor.xml_edit import EditError, add_center, set_alarm_host
from hikd.isapi_xml import text_of
from hikd.jobs.config import default_output_dir
from hikd.recorders.config_backup import store_export
from hikd.sdk.errors import NotFoundError, NotSupportedError, SdkError

if TYPE_CHECKING:
    from hikd.config import Config
    from hikd.devices.session import DeviceSession


def plan(
    report: DeviceReport,
    session: DeviceSession,
    linkage: Linkage | None,
    host: AlarmHostPlan | None,
) -> list[Change]:
    """The writes that fix what the checks found; each built from the device's document."""
    changes: list[Change] = []
    for found in linkage.fixable() if linkage else []:
        trigger = found.trigger
        label = f"{found.kind.label} {found.number}" if found.number else found.kind.label
        change = _center_change(session, trigger.id, label)
        if isinstance(change, str):
            report.add(Check(f"fix {trigger.id}", "problem", change))
        elif change is not None:
            changes.append(change)
    if host is not None:
        try:
            body = session.isapi("GET", HTTP_HOSTS_URL).body
            new, what = set_alarm_host(body, host.slot.id, host.address, host.port, "/")
        except (SdkError, EditError, UnicodeDecodeError) as exc:
            report.add(Check("fix alarm host", "problem", f"cannot change it: {exc}"))
        else:
            was = "unused" if host.slot.unused else f"{host.slot.address}:{host.slot.port}"
            changes.append(
                Change(
                    f"alarm host {host.slot.id} (was {was}) -> {host.address}:{host.port}",
                    "PUT",
                    HTTP_HOSTS_URL,
                    new,
                    what,
                )
            )
    return changes


def _center_change(session: DeviceSession, trigger_id: str, label: str) -> Change | str | None:
    """The linkage of one trigger with "center" added: its notifications document, else
    the whole trigger document. A string says why it cannot be done; None: nothing to do."""
    for url in (
        f"/ISAPI/Event/triggers/{trigger_id}/notifications",
        f"/ISAPI/Event/triggers/{trigger_id}",
    ):
        try:
            body = session.isapi("GET", url).body
        except (NotFoundError, NotSupportedError):
            continue
        except SdkError as exc:
            return f"cannot read {url}: {exc}"
        try:
            edited = add_center(body)
        except (EditError, UnicodeDecodeError) as exc:
            return f"cannot change {url}: {exc}"
        if edited is None:
            return None
        new, added = edited
        return Change(f"{label}: notify surveillance center", "PUT", url, new, added)
    return f"the device offers no document for trigger {trigger_id}"


def backup_folder(config: Config, device: str) -> Path:
    """Where the configuration-backup job of `device` stores its exports, else
    ``<state_dir>/files/doctor-backups``; one folder per device in either."""
    for job in config.jobs:
        covers = job.get("devices") is None or device in job.get("devices", [])
        if job.get("kind") == "config_backup" and covers:
            out = job.get("output_dir")
            base = Path(out) if out else default_output_dir(config) / str(job.get("name"))
            return base / device
    return default_output_dir(config) / "doctor-backups" / device


def apply(
    report: DeviceReport, session: DeviceSession, config: Config, changes: list[Change]
) -> list[Change]:
    """Save the device's configuration, then make each change; returns them with results."""
    if not changes:
        return changes
    try:
        data = export_configuration(session)
        path = store_export(backup_folder(config, session.name), data, datetime.now(UTC))
    except (SdkError, OSError) as exc:
        report.add(
            Check(
                "configuration backup",
                "problem",
                f"cannot save the device's configuration first ({exc}): nothing was changed",
                "give the user the right to export the configuration, or make the backup "
                "folder writable",
            )
        )
        return [replace(c, error="not applied: no backup") for c in changes]
    report.backup = str(path)
    done: list[Change] = []
    for change in changes:
        try:
            session.isapi(change.method, change.url, change.body)
        except SdkError as exc:
            done.append(replace(change, error=f"the device refused it: {exc}{_said(exc)}"))
        else:
            done.append(replace(change, applied=True))
    return done


def _said(exc: SdkError) -> str:
    """The device's own word for a refused write (a 400 comes back as library error 11
    with the device's ResponseStatus in the status buffer)."""
    detail = getattr(exc, "detail", "")
    status = text_of(detail.encode(), "subStatusCode") if isinstance(detail, str) else ""
    return f" ({status})" if status else ""
