"""An event's pictures as MQTT messages (``[sinks.mqtt] images = true``): each JPEG on
``<prefix>/<device>/<where>/<type>/image``, and the last one as the channel's latest picture
on ``<prefix>/<device>/<channel>/image`` (Home Assistant's image entity), whatever brought
it: an alarm or a snapshot."""

from __future__ import annotations

from pathlib import Path

from hikd.events import Event
from hikd.logs import get_logger
from hikd.sinks.mqtt.topics import Message, Topics, where_of

log = get_logger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg")


def picture_messages(topics: Topics, event: Event) -> list[Message]:
    """Retained messages of the event's JPEGs; a picture that cannot be read is left out
    with a warning (the event itself still goes out)."""
    messages = []
    where = where_of(event)
    topic = topics.image(event.device.name, where, event.type)
    data = b""
    for path in event.files:
        if not path.lower().endswith(IMAGE_SUFFIXES):
            continue
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            log.warning("cannot read an event's picture", path=path, error=str(error))
            continue
        messages.append(Message(topic, data, retain=True))
    if messages and isinstance(where, int):
        messages.append(Message(topics.picture(event.device.name, where), data, True))
    return messages
