"""Address lists of the configuration (``[[listen]] allowed``, a device's ``host`` and
``allowed_addresses``): IP addresses, networks and host names, names resolved.

A name is resolved when hikd starts and again every `REFRESH_S` (a device's address may
change with DHCP or DNS). A name that does not resolve is one log line (and one again when it
resolves), never an error: until it resolves, it matches no sender; a name that resolved
before keeps its last addresses.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

log = structlog.get_logger("hikd.addresses")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str], set[str]]

REFRESH_S = 300.0
START_WAIT_S = 10.0
"""How long the start waits for the first resolution of every name (DNS may be down)."""


def resolve_name(name: str) -> set[str]:
    """Every IP address `name` resolves to now (socket.gaierror when none)."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return {str(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) for info in infos}


def normal_ip(text: str) -> str | None:
    """``text`` as one spelling of an IP address (an IPv4-mapped IPv6 as IPv4); None if not one."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def unresolved(entries: Iterable[str], resolve: Resolve = resolve_name) -> list[tuple[str, str]]:
    """(name, error) for each host name among `entries` that does not resolve now."""
    failing = []
    for name in dict.fromkeys(AddressSet(entries).names):
        try:
            resolve(name)
        except (OSError, UnicodeError, ValueError) as exc:
            failing.append((name, str(exc)))
    return failing


class AddressSet:
    """Addresses, networks and host names; `in` tells whether an IP belongs (thread-safe)."""

    def __init__(self, entries: Iterable[str], where: str = "") -> None:
        self.where = where
        self.names: list[str] = []
        ips: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            entry = entry.strip()
            ip = normal_ip(entry)
            if ip is not None:
                ips.add(ip)
                continue
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                self.names.append(entry)
            else:
                networks.append(network)
        self._ips = frozenset(ips)
        self._networks = tuple(networks)
        self._resolved: dict[str, frozenset[str]] = {}
        self._failing: set[str] = set()
        self._all = self._ips

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        if address in self._all:
            return True
        ip = normal_ip(address)
        if ip is None:
            return False
        if ip != address and ip in self._all:
            return True
        parsed = ipaddress.ip_address(ip)
        return any(parsed in network for network in self._networks)

    def __bool__(self) -> bool:
        return bool(self._ips or self._networks or self.names)

    def refresh(self, resolve: Resolve = resolve_name) -> bool:
        """Resolve the names again; True when what matches changed."""
        changed = False
        for name in self.names:
            try:
                found = frozenset(resolve(name))
            except (OSError, UnicodeError, ValueError) as exc:
                if name not in self._failing:
                    self._failing.add(name)
                    log.warning(
                        "host name does not resolve",
                        name=name,
                        where=self.where,
                        error=str(exc),
                        hint="senders are matched against it once it resolves; "
                        "check the name or use an IP address",
                    )
                continue
            if name in self._failing:
                self._failing.discard(name)
                log.info("host name resolves again", name=name, where=self.where)
            if self._resolved.get(name) != found:
                self._resolved[name] = found
                changed = True
        if changed:
            self._all = self._ips.union(*self._resolved.values())
        return changed


class NameRefresher:
    """Resolves the names of some `AddressSet`s at start (in parallel) and every `every_s`."""

    def __init__(
        self,
        sets: Sequence[AddressSet],
        on_change: Callable[[], None] = lambda: None,
        every_s: float = REFRESH_S,
        resolve: Resolve = resolve_name,
    ) -> None:
        self.sets = [s for s in sets if s.names]
        self._on_change = on_change
        self._every_s = every_s
        self._resolve = resolve
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait_s: float = START_WAIT_S) -> None:
        if not self.sets:
            return
        first = threading.Thread(target=self._refresh_all, name="resolve-names", daemon=True)
        first.start()
        first.join(wait_s)
        self._thread = threading.Thread(target=self._run, name="resolve-names", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def watch(self, sets: Sequence[AddressSet], wait_s: float = START_WAIT_S) -> None:
        """Resolve these sets too (a reload added devices): now, then with the others."""
        known = {id(s) for s in self.sets}
        new = [s for s in sets if s.names and id(s) not in known]
        if not new or self._stop.is_set():
            return

        def resolve_new() -> None:
            if any([s.refresh(self._resolve) for s in new]):
                self._on_change()

        first = threading.Thread(target=resolve_new, name="resolve-names", daemon=True)
        first.start()
        first.join(wait_s)
        self.sets = [*self.sets, *new]
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="resolve-names", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self._refresh_all()

    def _refresh_all(self) -> None:
        with ThreadPoolExecutor(max_workers=min(16, len(self.sets))) as pool:
            changed = list(pool.map(lambda s: s.refresh(self._resolve), self.sets))
        if any(changed):
            self._on_change()
