"""Recorders: the job kinds that fetch things from devices (recordings, clips, snapshots,
configuration exports, status, logs, device-side backups), each registered in the
``hikd.jobs`` entry-point group."""
