"""The device side of ISAPI session login: challenges, the password hash, lock-out and sessions.

Facts from sdk-over-isapi.md part 1 §1 and part 2 §1 (what libhcnetsdk sends and accepts).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass, field

CAPABILITIES_PATH = "/ISAPI/Security/sessionLogin/capabilities"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def user_salt(serial: str, username: str, label: str = "salt") -> str:
    """A stable 64-hex salt per device and user.

    It must be exactly 64 characters: with any other length the library hashes only the
    challenge and the password is ignored (part 1 §1, "SDK quirk").
    """
    return sha256_hex(f"{label}:{serial}:{username}")


def password_hash(
    username: str,
    password: str,
    *,
    challenge: str,
    iterations: int,
    salt: str | None,
    irreversible: bool = True,
    salt2: str | None = None,
) -> str:
    """The <password> of the login POST, exactly as libHCCore's GetLoginXML builds it."""
    if irreversible and salt is not None:
        h = sha256_hex(username + salt + password) if len(salt) == 64 else ""
        if salt2 is not None and len(salt2) == 64:
            h = sha256_hex(username + salt2 + h)
    else:
        h = sha256_hex(password)
    h = h + challenge
    for _ in range(iterations - 1):
        h = sha256_hex(h)
    return h


def hmac_session_id(username: str, iterations: int, challenge: str, random: str) -> str:
    """The sessionID the library verifies when <sessionIDVersion> is present (part 2 §1)."""
    key = sha256_hex(username + str(iterations) + challenge).encode("ascii")
    msg = ("GET" + CAPABILITIES_PATH + username + random).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Challenge:
    """What one capabilities reply promised; the login POST that follows refers to it."""

    username: str
    challenge: str
    salt: str
    salt2: str | None
    created: float


@dataclass(slots=True)
class LoginResult:
    ok: bool
    locked: bool = False
    retries_left: int = 0
    unlock_in_s: int = 0
    session_id: str = ""


@dataclass(slots=True)
class _UserState:
    bad_tries: int = 0
    consecutive_bad: int = 0
    locked_until: float = 0.0
    logins: int = 0


@dataclass
class Accounts:
    """Users, pending challenges and open sessions of one device. Thread-safe: the
    simulator's loop changes it, tests read it from their own thread."""

    serial: str
    users: dict[str, str]
    iterations: int
    lock_after: int
    lock_seconds: int
    session_id_version: str | None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pending: dict[str, Challenge] = field(default_factory=dict, repr=False)
    _sessions: dict[str, str] = field(default_factory=dict, repr=False)
    _state: dict[str, _UserState] = field(default_factory=dict, repr=False)

    def salt(self, username: str) -> str:
        return user_salt(self.serial, username)

    def salt2(self, username: str) -> str | None:
        # Only version 2.1 uses a second salt (part 1 §1).
        return (
            user_salt(self.serial, username, "salt2") if self.session_id_version == "2.1" else None
        )

    def new_challenge(self, username: str, random: str) -> tuple[str, Challenge]:
        """A fresh challenge for `username` and the sessionID that names it."""
        challenge = secrets.token_hex(16)
        if self.session_id_version is not None:
            session_id = hmac_session_id(username, self.iterations, challenge, random)
        else:
            session_id = secrets.token_hex(32)
        pending = Challenge(
            username, challenge, self.salt(username), self.salt2(username), time.monotonic()
        )
        with self._lock:
            now = pending.created
            if len(self._pending) > 4096:
                self._pending = {k: v for k, v in self._pending.items() if now - v.created < 60}
            self._pending[session_id] = pending
        return session_id, pending

    def login(self, username: str, hashed: str, session_id: str) -> LoginResult:
        """Check a login POST; count wrong passwords and lock the user after `lock_after`."""
        with self._lock:
            state = self._state.setdefault(username, _UserState())
            pending = self._pending.pop(session_id, None)
            now = time.monotonic()
            if state.locked_until and now >= state.locked_until:
                state.locked_until = 0.0
                state.consecutive_bad = 0
            password = self.users.get(username)
            if password is None:
                good = False
            elif pending is not None and pending.username == username:
                expected = password_hash(
                    username,
                    password,
                    challenge=pending.challenge,
                    iterations=self.iterations,
                    salt=pending.salt,
                    salt2=pending.salt2,
                )
                good = hmac.compare_digest(expected, hashed)
            else:
                # The library sends sha256(password) and no sessionID when the
                # capabilities request failed (part 1 §1).
                good = hmac.compare_digest(sha256_hex(password), hashed)
            if not good:
                state.bad_tries += 1
            if state.locked_until:
                return LoginResult(
                    False, locked=True, unlock_in_s=math.ceil(state.locked_until - now)
                )
            if not good:
                state.consecutive_bad += 1
                if state.consecutive_bad >= self.lock_after:
                    state.locked_until = now + self.lock_seconds
                    return LoginResult(False, locked=True, unlock_in_s=self.lock_seconds)
                return LoginResult(False, retries_left=self.lock_after - state.consecutive_bad)
            state.consecutive_bad = 0
            state.logins += 1
            if not session_id or pending is None or session_id in self._sessions:
                session_id = secrets.token_hex(32)
            self._sessions[session_id] = username
            return LoginResult(True, session_id=session_id)

    def session_user(self, session_id: str) -> str | None:
        with self._lock:
            return self._sessions.get(session_id)

    def logout(self, session_id: str) -> bool:
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def forget_sessions(self) -> None:
        """What a device restart does: every session cookie becomes unknown."""
        with self._lock:
            self._sessions.clear()
            self._pending.clear()

    def bad_tries(self, username: str) -> int:
        """Every wrong password for `username` since start, locked or not."""
        with self._lock:
            state = self._state.get(username)
            return state.bad_tries if state else 0

    def logins(self, username: str) -> int:
        """Successful logins of `username` since start."""
        with self._lock:
            state = self._state.get(username)
            return state.logins if state else 0

    def is_locked(self, username: str) -> bool:
        with self._lock:
            state = self._state.get(username)
            return bool(state and state.locked_until and time.monotonic() < state.locked_until)

    def unlock(self, username: str) -> None:
        """What an installer does on the device's web page: clear the lock and the count."""
        with self._lock:
            state = self._state.get(username)
            if state:
                state.locked_until = 0.0
                state.consecutive_bad = 0

    def set_password(self, username: str, password: str) -> None:
        with self._lock:
            self.users[username] = password

    @property
    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)
