"""Layer 2: device sessions (login, reconnect, facts), the capabilities they offer per
protocol, SDK exception routing, and how commands open the library and log in once."""
