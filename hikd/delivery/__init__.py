"""Delivery: the event bus, the durable outbox, and one worker per sink."""
