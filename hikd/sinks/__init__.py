"""Sinks: where events go (MQTT, syslog, disk, third-party plugins)."""
