"""Recorders: scheduled jobs that fetch things from devices (recordings, snapshots,
configuration exports, status, logs, device-side backups)."""
