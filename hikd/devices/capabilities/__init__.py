"""Capabilities of a device session: what a recorder asks for, whatever the protocol.

Each capability takes a logged-in `DeviceSession` and picks the SDK route that works on
the session's protocol (the table at the top of sdk-over-isapi.md), so recorders never
branch on ``private`` or ``isapi`` themselves.
"""
