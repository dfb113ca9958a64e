"""Watching hikd: what the delivery side learns from the stored events and its own numbers.

`board` keeps counts and each device's state from every event stored in the outbox (fed
by `watch`, an internal consumer of the outbox); `metrics` serves them to Prometheus and
`control` answers `hikd status` on a Unix socket. Nothing here touches the vendor library:
it works the same whether devices run in this process or in device hosts.
"""
