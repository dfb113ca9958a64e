"""A device host tells the supervisor which alarms a batch opens and closes in one message
per batch (the supervisor closes them itself if the host crashes)."""

from __future__ import annotations

from multiprocessing import Pipe

from hikd.events import DeviceRef, Event, health
from hikd.hosts.child import _Link
from hikd.hosts.messages import AlarmsNoted

CAM = DeviceRef("cam", "SERIAL", "192.0.2.1")


def test_one_message_per_batch_with_the_starts_and_the_stops() -> None:
    control, supervisor = Pipe()
    wake, _ = Pipe()
    link = _Link(control, wake)
    first = Event(kind="alarm", type="motion", state="start", device=CAM, channel=1)
    second = Event(kind="alarm", type="tamper", state="start", device=CAM, channel=2)
    stop = Event(
        kind="alarm",
        type="motion",
        state="stop",
        device=CAM,
        channel=1,
        attributes={"start_id": first.id},
    )
    pulse = Event(kind="alarm", type="io", state="pulse", device=CAM)
    link.note([first, health(CAM, "online"), second, pulse, stop])
    message = supervisor.recv()
    assert isinstance(message, AlarmsNoted)
    assert [i for i, _ in message.opened] == [first.id, second.id]
    assert message.closed == (first.id,)
    # The JSON is the stored one: the supervisor reads it back only after a crash.
    assert Event.from_stored_json(message.opened[1][1]) == second
    assert not supervisor.poll()  # one message for the batch
    link.note([pulse, health(CAM, "offline")])  # nothing to say: no message
    assert not supervisor.poll()
