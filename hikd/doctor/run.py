"""One doctor run over one device: hikd's side, then the device's, then the fixes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hikd.devices.session import DeviceSession
from hikd.doctor import device_side, fixes, hikd_side, linkage
from hikd.doctor.report import DeviceReport

if TYPE_CHECKING:
    from hikd.config import Config, DeviceConfig
    from hikd.sdk.library import Library


def examine(
    sdk: Library, config: Config, device: DeviceConfig, fix: bool = False, apply: bool = False
) -> DeviceReport:
    """The report of `device`. With `fix` it lists the changes that would fix it; with
    `apply` too it makes them (after a configuration backup) and checks again."""
    report = DeviceReport(device.name, f"{device.host}:{device.port}")
    facing = hikd_side.reach(report, device)
    if facing is None:
        return report
    session = DeviceSession(sdk, device, publish=lambda _event: None)
    if not hikd_side.log_in(report, session, config.daemon.state_dir):
        session.close()
        return report
    try:
        found, host = _checks(report, session, config, facing)
        if fix:
            changes = fixes.plan(report, session, found, host)
            if apply and changes:
                changes = fixes.apply(report, session, config, changes)
                report.changes = changes
                return _after(report, session, config, facing)
            report.changes = changes
    finally:
        session.close()
    return report


def _checks(
    report: DeviceReport, session: DeviceSession, config: Config, facing: str
) -> tuple[linkage.Linkage | None, device_side.AlarmHostPlan | None]:
    hikd_side.arm(report, session, config)
    clock = hikd_side.clock(report, session)
    hikd_side.listen_ports(report, config, facing)
    found = linkage.read_linkage(report, session, listening=bool(config.listen))
    if found is not None:
        linkage.check_linkage(report, found)
        linkage.check_schedules(report, session, found, clock.now)
    host = device_side.check_alarm_host(report, session, config, facing)
    device_side.check_rights(report, session)
    device_side.check_storage(report, session, config)
    return found, host


def _after(
    report: DeviceReport, session: DeviceSession, config: Config, facing: str
) -> DeviceReport:
    """The checks again after the changes (same session): the report shows what is now."""
    after = DeviceReport(report.device, report.address, changes=report.changes)
    after.backup = report.backup
    after.checks = [c for c in report.checks if c.name in ("address", "login", "protocol")]
    _checks(after, session, config, facing)
    failed = [c for c in report.checks if c.name.startswith(("fix ", "configuration backup"))]
    after.checks.extend(failed)
    return after
