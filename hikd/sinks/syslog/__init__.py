"""The syslog sink: RFC 5424 over UDP, TCP or a Unix socket (README.md, sample.toml)."""
