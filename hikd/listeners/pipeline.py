"""From copied SDK messages to published events, on one decoder thread.

    SDK callback --put--> queue --> match device --> decode --> start/stop --> publish

The callback side is `message_callback` (`hikd.listeners.intake`: the C callback, or a
C-level ``SimpleQueue.put`` from the Python one): nothing else happens on the library's
threads. Everything that can be slow (parsing, writing pictures, state) happens here, on
the decoder thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import structlog

from hikd.addresses import AddressSet
from hikd.delivery import hops
from hikd.events import DeviceRef, Event
from hikd.listeners.alarm_state import AlarmStateTracker
from hikd.listeners.decode import DecodeContext, decode
from hikd.listeners.decode.commands import ERROR_MESSAGE
from hikd.listeners.intake import AlarmIntake, Route
from hikd.listeners.senders import SenderMap
from hikd.sdk.alarms import AlarmCallback
from hikd.sdk.raw import Alarmer, RawAlarm

log = structlog.get_logger("hikd.alarms")

UNVETTED_LOG_EVERY_S = 60.0
FLUSH_EVERY = 16
"""Messages decoded at most before what they meant is stored (when they come faster than
they are decoded): fewer, larger writes under load, a bounded wait for the first."""
_MEMO_MAX = 4096
_EXPIRY_SLACK_S = 0.001
"""How long after an alarm's hold runs out the decoder looks (a hold ends strictly after)."""


@dataclass
class DeviceEntry:
    """What the pipeline knows of one configured device."""

    context: DecodeContext
    addresses: AddressSet
    user_id: int | None = None


class DeviceDirectory:
    """Finds the device a message came from: by session (arming) or sender address (listen).

    A device's addresses are its host and allowed_addresses: IP addresses, networks and
    host names (resolved, `hikd.addresses`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, DeviceEntry] = {}
        self._by_user: dict[int, DeviceEntry] = {}
        self._memo: dict[str, DeviceEntry | None] = {}

    def add(self, name: str, context: DecodeContext, addresses: Iterable[str] | AddressSet) -> None:
        if not isinstance(addresses, AddressSet):
            addresses = AddressSet(addresses, where=f"device {name}")
        entry = DeviceEntry(context, addresses)
        with self._lock:
            self._by_name[name] = entry
            self._memo.clear()

    def remove(self, name: str) -> None:
        """`name` is no longer configured (a reload): its messages match nothing now."""
        with self._lock:
            entry = self._by_name.pop(name, None)
            if entry is not None and entry.user_id is not None:
                self._by_user.pop(entry.user_id, None)
            self._memo.clear()

    def address_sets(self) -> list[AddressSet]:
        with self._lock:
            return [entry.addresses for entry in self._by_name.values()]

    def addresses_changed(self) -> None:
        """A host name resolves to other addresses now: match senders again."""
        with self._lock:
            self._memo.clear()

    def logged_in(self, name: str, user_id: int, context: DecodeContext) -> None:
        with self._lock:
            entry = self._by_name.get(name)
            if entry is None:
                return
            if entry.user_id is not None:
                self._by_user.pop(entry.user_id, None)
            entry.user_id = user_id
            entry.context = context
            self._by_user[user_id] = entry

    def logged_out(self, name: str) -> None:
        with self._lock:
            entry = self._by_name.get(name)
            if entry is not None and entry.user_id is not None:
                self._by_user.pop(entry.user_id, None)
                entry.user_id = None

    def by_user(self, user_id: int | None) -> DecodeContext | None:
        with self._lock:
            entry = self._by_user.get(user_id) if user_id is not None else None
            return entry.context if entry else None

    def by_address(self, address: str) -> DecodeContext | None:
        with self._lock:
            if address in self._memo:
                entry = self._memo[address]
            else:
                entry = next((e for e in self._by_name.values() if address in e.addresses), None)
                if len(self._memo) >= _MEMO_MAX:
                    self._memo.clear()
                self._memo[address] = entry
            return entry.context if entry else None


class AlarmPipeline:
    def __init__(
        self,
        directory: DeviceDirectory,
        tracker: AlarmStateTracker,
        publish: Callable[[Event], object],
        senders: SenderMap | None = None,
        picture_dir: Path | None = None,
        expire_every_s: float = 0.25,
        flush: Callable[[], None] | None = None,
    ) -> None:
        """`flush`, where given, is called on the decoder thread once it has decoded what
        was queued (up to `FLUSH_EVERY` messages): what it published is stored now."""
        self.directory = directory
        self.tracker = tracker
        self._publish = publish
        self._flush = flush or (lambda: None)
        self._alarmers: dict[bytes, Alarmer] = {}
        self._senders = senders
        self._unvetted_logged = 0.0
        self._picture_dir = picture_dir
        self._expire_every_s = expire_every_s
        self._queue: AlarmIntake[_Errand | None] = AlarmIntake()
        self.enqueue: Callable[[RawAlarm], None] = self._queue.put
        """Queue a copied message as the callback would (tests, replays)."""
        self.counters: Counter[str] = Counter()
        # Two taps of the decoder thread, not a second way for data (every event leaves
        # through `publish`, the bus): they see what the bus never carries, the repeats
        # before start/stop derivation and the raw messages, heartbeats included.
        self.watchers: list[Callable[[Event], None]] = []
        """Called on the decoder thread with every decoded event before start/stop
        derivation (backfill's record of what arrived live); they must only note it."""
        self.part_watchers: list[Callable[[str, RawAlarm], None]] = []
        """Called on the decoder thread with the device's name and every message from it,
        heartbeats included (the stream watch); they must only note it."""
        self.misread: Callable[[str, int], None] | None = None
        """Told the front's address of a relayed request the library could not read (its
        0x7fff message): the listen front relays it again (`ListenFront.misread`)."""
        self.heard: Callable[[str, int], None] | None = None
        """Told each relayed request's alias and number once its events are published: the
        host tells the front when they are stored (`HostPublisher.heard`)."""
        self._thread: threading.Thread | None = None

    def message_callback(self, source: Literal["arming", "listen"], port: int = 0) -> AlarmCallback:
        """The callback for the library (arming, or the listen port `port`): it copies each
        message to this pipeline's decoder. Keep it alive while the library may call it."""
        return self._queue.message_callback(source, port)

    @property
    def callback_route(self) -> Route:
        """Which alarm callback runs: "c" (hikd/sdk/native) or "python"."""
        return self._queue.route

    @property
    def callback_errors(self) -> int:
        """Messages the callbacks could not copy (out of memory)."""
        return self._queue.errors

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alarm-decoder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Decode what is queued, then stop (the open alarms stay open: a restart goes on)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._queue.close()  # a decoder still running keeps its queue
        self._thread = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def on_decoder(self, errand: Callable[[], None]) -> None:
        """Run `errand` on the decoder thread after every message queued before it (a
        reload ends a removed device's alarms after its last messages were decoded)."""
        self._queue.put(_Errand(errand))

    def _run(self) -> None:
        while True:
            if not self._decode_queued():
                self._flush()
                return
            # Each alarm ends when its hold runs out, in the same batch as what was just
            # decoded (`expire` looks only at the soonest ends: cheap when none is due).
            for event in self.tracker.expire():
                self._publish(event)
            self._flush()

    def _decode_queued(self) -> bool:
        """Wait for a message (until the next alarm's hold runs out, at most the expiry
        interval); decode it and what else is queued, up to `FLUSH_EVERY` messages. False
        once the stop marker is reached."""
        wait = self._expire_every_s
        due = self.tracker.next_expiry()
        if due is not None:
            wait = min(wait, max(_EXPIRY_SLACK_S, due - time.monotonic() + _EXPIRY_SLACK_S))
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return True
        for taken in range(1, FLUSH_EVERY + 1):
            if item is None:
                return False
            if isinstance(item, _Errand):
                item.run()
            else:
                self.handle(item)
            if taken == FLUSH_EVERY:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return True

    def handle(self, raw: RawAlarm) -> None:
        """Decode one message and publish what it means. Never raises."""
        taken_ns = time.monotonic_ns() if hops.ON else 0
        try:
            alarmer = self._alarmers.get(raw.alarmer)
            if alarmer is None:
                # An armed device's messages bring the same struct bytes (its connection's):
                # read through cffi once (~7 us), not per message. A pushed alarm's differ
                # (wSocketPort, a connection per push): read each time, as before.
                if len(self._alarmers) >= _MEMO_MAX:
                    self._alarmers.clear()
                alarmer = self._alarmers[raw.alarmer] = raw.sender()
            senders = self._senders
            alias, number, again = "", 0, False
            if senders is not None and senders.is_alias(alarmer.device_ip):
                alias, number, unheard = senders.count_heard(alarmer.device_ip)
                if self.misread is not None:
                    for lost in unheard:
                        # Taken without a word (README's vendor-library notes): the front
                        # relays it again, as a misread one.
                        self.counters["listen_unheard"] += 1
                        self.misread(alias, lost)
                if raw.command == ERROR_MESSAGE and self.misread is not None:
                    # A request the front vetted as a well-formed alarm: the library's
                    # misreading (README's vendor-library notes), not the device's mistake.
                    self.counters["listen_misread"] += 1
                    self.misread(alias, number)
                    return
                again = senders.again(alias, number)
            context = self._context_for(raw, alarmer)
            if context is None:
                return
            for note in self.part_watchers:
                note(context.device.name, raw)
            for event in decode(raw, context):
                if again:  # its host ended before it said whether it had stored this
                    event = replace(event, attributes={**event.attributes, "resent": True})
                self.counters[f"{event.kind}:{event.type}"] += 1
                for watch in self.watchers:
                    watch(event)
                if event.attributes.get("resent"):
                    # An alarm of the past, sent again after a broken link: one record
                    # with its own time, never merged into (or ending) a live alarm.
                    self._publish(
                        replace(event, state="pulse" if event.state == "start" else event.state)
                    )
                    continue
                for out in self.tracker.feed(event):
                    if hops.ON:
                        hops.note("dequeued", (out,), taken_ns)
                        hops.note("decoded", (out,))
                    self._publish(out)
            if number and self.heard is not None:
                self.heard(alias, number)
        except Exception:
            self.counters["pipeline_errors"] += 1
            log.exception("alarm pipeline error", command=hex(raw.command))

    def _context_for(self, raw: RawAlarm, alarmer: Alarmer) -> DecodeContext | None:
        if raw.source == "arming":
            context = self.directory.by_user(alarmer.user_id)
            if context is not None:
                return context
        # Listen mode (and the 0x7fff messages it routes to the global callback): the
        # sender's socket address is all the library gives (part 1 §4), the listen front's
        # loopback address for the real sender, which the front checked against the
        # allow-list before relaying.
        address = alarmer.device_ip
        if raw.source == "listen" or self._relayed(address):
            sender = self._senders.sender_of(address) if self._senders else None
            if sender is None:
                self._unvetted(address, raw.listen_port)
                return None
            address = sender
        context = self.directory.by_address(address)
        if context is not None:
            return context
        self.counters["unknown_sender"] += 1
        return DecodeContext(
            device=DeviceRef(name=address or "unknown", address=address),
            picture_dir=self._picture_dir,
        )

    def _relayed(self, address: str) -> bool:
        return self._senders is not None and self._senders.is_alias(address)

    def _unvetted(self, address: str, port: int) -> None:
        """A message on the library's loopback listen port that did not come through the
        listen front (another program on this machine connected to it): dropped."""
        self.counters["listen_unvetted"] += 1
        now = time.monotonic()
        if now - self._unvetted_logged >= UNVETTED_LOG_EVERY_S:
            self._unvetted_logged = now
            log.warning(
                "alarm that did not come through hikd's listen front: dropped",
                sender=address,
                port=port,
                count=self.counters["listen_unvetted"],
                hint="a program on this machine connects to the vendor library's loopback "
                "listen port; devices must push to the [[listen]] port",
            )


class _Errand:
    """Work for the decoder thread, queued among the messages (`AlarmPipeline.on_decoder`)."""

    __slots__ = ("_work",)

    def __init__(self, work: Callable[[], None]) -> None:
        self._work = work

    def run(self) -> None:
        try:
            self._work()
        except Exception:
            log.exception("alarm pipeline: an errand failed")
