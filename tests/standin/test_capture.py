"""JPEG capture and configuration export on private-protocol sessions, through the
stand-in library.

The real library cannot do either over ISAPI (CaptureJPEGPicture_NEW fails with 189;
GetConfigFile_V30 is a private-protocol call), so these paths run against the stand-in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hikd.devices.capabilities.config_export import export_configuration
from hikd.devices.capabilities.snapshot import snapshot
from hikd.devices.session import DeviceSession
from hikd.recorders.config_backup import ConfigBackupConfig, ConfigBackupJob
from hikd.recorders.snapshot import SnapshotConfig, SnapshotJob
from hikd.sdk.errors import BufferTooSmallError, NotFoundError, NotSupportedError
from hikd.state import StateStore
from tests.standin import StandIn, expected_config, expected_jpeg
from tests.standin.jobs import job_context

pytest_plugins = ["tests.standin.fixtures"]

pytestmark = pytest.mark.standin


def test_capture_returns_the_devices_jpeg(standin: StandIn, standin_session: DeviceSession) -> None:
    """The real library cannot do this over ISAPI (CaptureJPEGPicture_NEW: error 189)."""
    assert snapshot(standin_session, 2) == expected_jpeg(2)
    # IP channel 5 (after the 4 analog ones) is the private protocol's 33 (byStartDChan).
    assert snapshot(standin_session, 5) == expected_jpeg(33)
    # Stream resolution (0xff) and best quality (0), seed 5.12.
    assert (standin.get("jpeg_pic_size"), standin.get("jpeg_quality")) == (0xFF, 0)


def test_a_failed_capture_does_not_trust_the_returned_size(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The real library cannot do this over ISAPI; the stand-in copies its quirk of setting
    lpSizeReturned to the buffer size on failure."""
    standin.set(jpeg_error=189)
    with pytest.raises(NotSupportedError):
        snapshot(standin_session, 1)
    standin.set(jpeg_error=0)
    with pytest.raises(NotFoundError):
        snapshot(standin_session, 9)  # no such channel: error 4


def test_a_picture_larger_than_the_first_buffer(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The real library cannot do this over ISAPI: a 5 MiB picture needs a second try with
    a larger buffer after error 43."""
    standin.set(jpeg_size=5 * 1024 * 1024)
    assert snapshot(standin_session, 1) == expected_jpeg(1, 5 * 1024 * 1024)
    assert standin.get("captures") == 2


def test_scheduled_snapshots_on_a_private_session(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore, tmp_path: Path
) -> None:
    """The real library cannot do this over ISAPI (error 189)."""
    ctx, events = job_context(standin_session, state_store, tmp_path)
    result = SnapshotJob(SnapshotConfig(channels=[1, 6])).run(ctx)
    assert result.ok, result.summary
    assert [Path(e.files[0]).read_bytes() for e in events] == [expected_jpeg(1), expected_jpeg(34)]
    assert [e.channel for e in events] == [1, 6]


def test_configuration_export_uses_the_size_query(
    standin: StandIn, standin_session: DeviceSession
) -> None:
    """The real library cannot do this over ISAPI (GetConfigFile_V30 is private-protocol)."""
    assert export_configuration(standin_session) == expected_config()
    assert standin.get("config_size_queries") == 1


def test_configuration_export_errors(standin: StandIn, standin_session: DeviceSession) -> None:
    """The real library cannot do this over ISAPI."""
    standin.set(config_error=43)
    with pytest.raises(BufferTooSmallError):
        export_configuration(standin_session)


def test_configuration_backups_on_a_private_session(
    standin: StandIn, standin_session: DeviceSession, state_store: StateStore, tmp_path: Path
) -> None:
    """The real library cannot do this over ISAPI (GetConfigFile_V30 is private-protocol)."""
    job = ConfigBackupJob(ConfigBackupConfig())
    ctx, events = job_context(standin_session, state_store, tmp_path)
    assert job.run(ctx).details["stored"]
    assert job.run(ctx).details["stored"] is False
    standin.set(config_version=2)
    assert job.run(ctx).details["stored"]
    stored = sorted((tmp_path / "dvr").glob("*.bin"))
    assert [p.read_bytes() for p in stored] == [expected_config(1), expected_config(2)]
    assert [e.type for e in events] == ["config_backup", "config_backup"]
