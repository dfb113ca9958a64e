"""The disk sink: events as JSON lines in rotated files (README.md, sample.toml)."""
