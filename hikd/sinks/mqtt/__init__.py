"""The MQTT sink and Home Assistant discovery (README.md, sample.toml)."""
