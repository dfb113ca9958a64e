"""What a reload changes (`hikd.config.changes`): devices added, removed, disabled, changed
(by key, never by value), untouched; everything else reported as needing a restart."""

from __future__ import annotations

from pathlib import Path

from hikd.config import Config, load_config
from hikd.config.changes import applied, compare

SECRET = "Old-Secret-1"


def config(
    tmp_path: Path, *tables: str, extra: str = "", env: dict[str, str] | None = None
) -> Config:
    path = tmp_path / "hikd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n' + "".join(tables) + extra)
    return load_config(path, env=env or {})


def device(name: str, host: str = "192.0.2.1", **keys: object) -> str:
    values: dict[str, object] = {"name": name, "host": host, "password": SECRET, **keys}
    lines = [
        f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}"
        for key, value in values.items()
        if value is not None
    ]
    return "[[devices]]\n" + "\n".join(lines).replace("'", '"') + "\n"


def test_devices_added_removed_disabled_changed_and_untouched(tmp_path: Path) -> None:
    old = config(
        tmp_path,
        device("keep"),
        device("gone", "192.0.2.2"),
        device("off", "192.0.2.3"),
        device("moved", "192.0.2.4"),
    )
    new = config(
        tmp_path,
        device("keep"),
        device("off", "192.0.2.3", enabled=False),
        device("moved", "192.0.2.5", password="New-Secret-2"),
        device("new", "192.0.2.6"),
    )
    changes = compare(old, new)
    assert changes.added == ["new"]
    assert changes.removed == {"gone": "removed", "off": "disabled"}
    assert changes.changed == {"moved": ["host", "password", "allowed_addresses"]}
    assert changes.unchanged == ["keep"]
    assert changes.needs_restart == []
    line = changes.line()
    assert line == (
        "added new; removed gone, off; changed moved (host, password, allowed_addresses); "
        "1 untouched"
    )
    assert "New-Secret-2" not in line and SECRET not in str(changes.attributes())
    assert compare(old, old).line() == "no device changed"


def test_what_cannot_change_live_is_named_and_not_applied(tmp_path: Path) -> None:
    old = config(tmp_path, device("keep"), extra='[sinks.disk]\npath = "/tmp/a"\n')
    new = config(
        tmp_path,
        device("keep"),
        device("new", "192.0.2.9"),
        extra=(
            '[sinks.disk]\npath = "/tmp/b"\n[sinks.mqtt]\nhost = "broker"\npassword = "p"\n'
            '[sdk]\nlog_level = 1\n[outbox]\nsynchronous = "full"\n'
        ),
    )
    changes = compare(old, new)
    assert changes.added == ["new"]
    expected = ["sdk.log_level", "outbox.synchronous", "sinks.disk", "sinks.mqtt"]
    assert changes.needs_restart == expected
    assert changes.line().endswith(
        "needs a restart to take effect (not applied): " + ", ".join(expected)
    )
    running = applied(old, new)
    assert [d.name for d in running.devices] == ["keep", "new"]
    assert running.sinks == old.sinks and running.sdk == old.sdk and running.outbox == old.outbox


def test_the_same_password_from_elsewhere_is_no_change(tmp_path: Path) -> None:
    old = config(tmp_path, device("keep"))
    new = config(tmp_path, device("keep", password=None), env={"HIKD_PASSWORD_KEEP": SECRET})
    assert new.devices[0].password_source != old.devices[0].password_source
    assert compare(old, new).changed == {}


def test_the_log_level_changes_live_and_the_format_with_a_restart(tmp_path: Path) -> None:
    old = config(tmp_path, device("keep"))
    new = config(tmp_path, device("keep"), extra='[logging]\nlevel = "debug"\nformat = "json"\n')
    changes = compare(old, new)
    assert changes.live == {"logging.level": "debug"}
    assert changes.needs_restart == ["logging.format"]
    assert changes.line() == (
        "no device changed; logging.level now debug; needs a restart to take effect "
        "(not applied): logging.format"
    )
    running = applied(old, new)
    assert running.logging.level == "debug" and running.logging.format == old.logging.format


def test_a_reload_is_refused_for_what_check_config_refuses(tmp_path: Path) -> None:
    """The sink sections and jobs are checked as `hikd check-config` does: a device removed
    while a job still names it is refused; removed with the job, it is not."""
    import pytest

    from hikd.daemon import _check_sinks_and_jobs
    from hikd.errors import ConfigError

    job = '[[jobs]]\nname = "poll"\nkind = "status"\ndevices = ["gone"]\ninterval_s = 3600\n'
    running = config(tmp_path, device("keep"), device("gone", "192.0.2.2"), extra=job)
    named = config(tmp_path, device("keep"), extra=job)
    with pytest.raises(ConfigError) as refused:
        _check_sinks_and_jobs(named)
    (problem,) = refused.value.problems
    assert problem.startswith("jobs.0.devices.0: no device named 'gone'"), problem
    without = config(tmp_path, device("keep"))
    bad_sink = config(tmp_path, device("keep"), extra='[sinks.mqtt]\nport = "x"\n')
    with pytest.raises(ConfigError, match=r"sinks\.mqtt\.port"):
        _check_sinks_and_jobs(bad_sink)
    _check_sinks_and_jobs(without)  # nothing to say
    changes = compare(running, without)
    assert changes.jobs == {"removed": ["poll"]} and changes.every_host
    assert changes.line() == "removed gone; 1 untouched; jobs rescheduled: removed poll"
    assert applied(running, without).jobs == []


def test_who_may_push_changes_live_and_a_listen_port_with_a_restart(tmp_path: Path) -> None:
    """The default allow-list is the devices' addresses: adding a device lets it push at
    once (not "needs a restart: listen"); an allow-list the user wrote changes live too and
    is shown; a port or a limit of the front needs a restart and names its key."""
    listen = '[[listen]]\naddress = "127.0.0.1"\nport = 7200\n'
    old = config(tmp_path, device("keep"), extra=listen)
    new = config(tmp_path, device("keep"), device("new", "192.0.2.9"), extra=listen)
    changes = compare(old, new)
    assert (changes.needs_restart, changes.live, changes.allowed) == ([], {}, [7200])
    assert changes.line() == "added new; 1 untouched"
    running = applied(old, new)
    assert running.listen[0].allowed == ["192.0.2.1", "192.0.2.9"]
    assert compare(running, new).allowed == []

    written = config(
        tmp_path, device("keep"), extra=listen + 'allowed = ["192.0.2.0/24", "nvr.lan"]\n'
    )
    changes = compare(running, written)
    assert changes.live == {"listen.0.allowed": "192.0.2.0/24, nvr.lan"}
    assert changes.allowed == [7200] and changes.needs_restart == []
    assert applied(running, written).listen[0].allowed == ["192.0.2.0/24", "nvr.lan"]

    moved = config(
        tmp_path, device("keep"), device("new", "192.0.2.9"), extra=listen.replace("7200", "7201")
    )
    changes = compare(old, moved)
    assert changes.needs_restart == ["listen.0.port"] and changes.allowed == []
    assert changes.line().endswith("needs a restart to take effect (not applied): listen.0.port")
    assert applied(old, moved).listen == old.listen
    more = config(tmp_path, device("keep"), extra=listen + listen.replace("7200", "7201"))
    assert compare(old, more).needs_restart == ["listen"]


def test_alarms_and_arming_change_live_and_say_their_new_values(tmp_path: Path) -> None:
    old = config(tmp_path, device("keep"), extra="[alarms.hold_s]\nmotion = 30\n")
    new = config(
        tmp_path,
        device("keep"),
        extra=(
            '[alarms]\npulse_types = ["unknown"]\n[alarms.hold_s]\ntamper = 2.5\n'
            '[arming]\nlevel = "low"\nupload_confirmation = true\nretry_s = 5\n'
        ),
    )
    changes = compare(old, new)
    assert changes.needs_restart == []
    assert changes.every_host and not changes.devices_changed
    assert changes.line() == (
        "no device changed; arming.level now low; arming.upload_confirmation now true; "
        "arming.retry_s now 5; alarms.hold_s.motion now the default for new alarms; "
        "alarms.hold_s.tamper now 2.5 for new alarms; alarms.pulse_types now [unknown] "
        "for new alarms"
    )
    running = applied(old, new)
    assert running.alarms == new.alarms and running.arming == new.arming
    assert not compare(
        old, config(tmp_path, device("keep"), extra="[alarms.hold_s]\nmotion = 30\n")
    ).every_host
