"""hikd: alarm and recording daemon for Hikvision DVRs, NVRs and cameras."""

__version__ = "0.1.0"
