"""Commands from MQTT (``[sinks.mqtt] commands = true``): the subscription, what a command
topic means, and the retained states of the controls (their discovery is
`command_discovery`, announced with the device's other entities).

* ``<prefix>/<device>/output<N>/set``, ``ON``/``OFF``: switches alarm output N;
* ``<prefix>/<device>/<channel>/snapshot/set``, any payload (``PRESS``): takes a snapshot
  (a file event follows);
* ``<prefix>/<device>/<channel>/<type>/detection/set``, ``ON``/``OFF``: switches a
  detection (``motion``, ``line_crossing``, ``intrusion``).

A message is turned into a `hikd.commands.Command` and handed to the daemon's submit
callable (``SinkContext.extra["submit_command"]``), which returns at once: paho's network
thread never waits for a device. The daemon checks it, carries it out and records it as a
``command`` event; when one is done, the switch's state topic says so (retained).
A retained command message replayed on subscribing is refused and removed: it would
otherwise fire again on every reconnect.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import paho.mqtt.client as mqtt

from hikd.commands import DETECTION, DETECTIONS, OUTPUT, SNAPSHOT, Command, SubmitCommand
from hikd.events import Event
from hikd.logs import get_logger
from hikd.sinks.mqtt.command_discovery import ControlTopics, detection_config
from hikd.sinks.mqtt.discovery import Discovery
from hikd.sinks.mqtt.facts import removed_devices
from hikd.sinks.mqtt.state import MqttState
from hikd.sinks.mqtt.topics import OFF, ON, Message, topic_level

log = get_logger(__name__)


def _switch(payload: bytes) -> bool | None:
    text = payload.strip().upper()
    return True if text == ON.encode() else False if text == OFF.encode() else None


def _number(text: str, prefix: str = "") -> int:
    """``3`` (or ``output3`` with `prefix` ``output``) -> 3; anything else -> 0 (refused)."""
    digits = text[len(prefix) :] if text.startswith(prefix) else ""
    return int(digits) if digits.isdigit() and len(digits) < 6 else 0


class MqttCommands:
    """The command side of the MQTT sink."""

    def __init__(
        self,
        discovery: Discovery,
        submit: SubmitCommand | None,
        announce: bool,
    ) -> None:
        self.discovery = discovery
        self.topics = ControlTopics(discovery.topics)
        self.submit = submit
        self.announce = announce
        """Home Assistant discovery on (``[sinks.mqtt] discovery``)."""
        self.states: dict[str, bytes] = {}
        """The retained state of every switch a command changed: topic -> ON/OFF."""
        self._prefix_levels = len(discovery.topics.prefix.split("/"))

    # -- from the broker (paho's network thread) ---------------------------------------
    def subscribe(self, client: mqtt.Client) -> None:
        if self.submit is None:
            log.warning(
                "[sinks.mqtt] commands = true, but this hikd cannot carry out commands; "
                "not subscribing to command topics"
            )
            return
        for topic in self.topics.subscriptions():
            client.subscribe(topic, qos=1)

    def handles(self, topic: str) -> bool:
        return self.submit is not None and topic.endswith("/set")

    def on_message(
        self, client: mqtt.Client, message: mqtt.MQTTMessage, devices: list[str]
    ) -> None:
        """Turn one message into a command and submit it (never blocks)."""
        assert self.submit is not None
        if not message.payload:
            return  # how MQTT deletes a retained message, not a command
        command = self.parse(message.topic, bytes(message.payload), devices)
        if message.retain:
            # Replayed by the broker on subscribing: it would fire again on every
            # reconnect of hikd. Refused, and removed from the broker.
            command = replace(
                command, refused="a retained command message (publish commands without retain)"
            )
            client.publish(message.topic, b"", qos=1, retain=True)
        try:
            self.submit(command)
        except Exception:
            log.exception("cannot submit a command", topic=message.topic)

    def parse(self, topic: str, payload: bytes, devices: list[str]) -> Command:
        """The command a message asks for; what cannot be understood still becomes a
        command, whose `Command.problem` says why it is refused."""
        levels = topic.split("/")[self._prefix_levels : -1]
        who = f"mqtt {topic}"
        level = levels[0] if levels else ""
        # The topic level of a device whose name holds '/', '+' or '#' differs from it.
        device = next((d for d in devices if topic_level(d) == level), level)
        rest = levels[1:]
        if len(rest) == 1 and rest[0].startswith("output"):
            return Command(device, OUTPUT, _number(rest[0], "output"), _switch(payload), who=who)
        if len(rest) == 2 and rest[1] == SNAPSHOT:
            return Command(device, SNAPSHOT, _number(rest[0]), who=who)
        if len(rest) == 3 and rest[2] == DETECTION:
            on = _switch(payload)
            return Command(device, DETECTION, _number(rest[0]), on, rest[1], who=who)
        return Command(device, "/".join(rest) or "(none)", 0, who=who)

    # -- from the outbox (the sink's worker, with the sink's lock) -----------------------
    def learn(self, event: Event, state: MqttState) -> list[Message]:
        """What `event` changes (called after `RetainedPicture.learn`): a switch's state
        after a command was carried out, and a detection switch for a detection type first
        seen now (the others come with the device's discovery)."""
        name = event.device.name
        if event.kind == "alarm" and event.type in DETECTIONS:
            return self._new_detection(event, state)
        if event.type == "reload":  # the removed devices' switch states go with them
            gone = removed_devices(event)
            levels = tuple(f"{self.discovery.topics.prefix}/{topic_level(n)}/" for n in gone)
            cleared = [t for t in self.states if t.startswith(levels)]
            for topic in cleared:
                del self.states[topic]
            return [Message(t, b"", retain=True) for t in cleared]
        if event.kind != "command" or event.attributes.get("outcome") != "done":
            return []
        on = event.attributes.get("on")
        channel = event.channel
        if event.type == OUTPUT and isinstance(on, bool):
            topic = self.topics.output(name, _int(event.attributes.get("target"))) + "/state"
        elif event.type == DETECTION and isinstance(on, bool) and channel is not None:
            detection = str(event.attributes.get("detection") or "")
            topic = self.topics.detection(name, channel, detection)
        else:
            return []
        payload = (ON if on else OFF).encode()
        self.states[topic] = payload
        return [Message(topic, payload, retain=True)]

    def _new_detection(self, event: Event, state: MqttState) -> list[Message]:
        announced = state.announced
        device = state.devices.get(event.device.name)
        if not (self.announce and self.discovery.commands) or announced is None or not device:
            return []
        if not isinstance(event.channel, int) or device.facts.is_hikd:
            return []
        parent = state.find(device.facts.via)
        found = detection_config(self.discovery, device.facts, event.channel, event.type, parent)
        if found.topic in announced:
            return []
        announced.add(found.topic)
        state.dirty = True
        return [found.message()]

    def republish(self) -> list[Message]:
        """The switches' states (their discovery is republished with the device's)."""
        return [Message(t, p, retain=True) for t, p in self.states.items()]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
