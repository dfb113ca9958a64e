"""The simulated device's routes, and who a request is from.

Each feature module adds its endpoints through `SimDevice.route()`; a path with regex
characters is matched as a regex. A request is from a user when it carries a session cookie
the device gave, or Digest or Basic credentials (sdk-over-isapi.md part 1 §1).
"""

from __future__ import annotations

import base64
import binascii
import re

from hikd.sim.auth import Accounts
from hikd.sim.digest import digest_user
from hikd.sim.http import Handler, Request
from hikd.sim.login import session_cookie

CONTROL_PREFIX = "/hikd-sim/"
"""The simulator's own control endpoints: public, and not in the device's request log."""


class Routes:
    """Which handler answers a request, and which paths need no login."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Handler]] = []
        self._public: set[str] = set()

    def add(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        """Serve `method path`; a path with regex characters is matched as a regex."""
        if any(c in path for c in "()[]\\+*?"):
            self._patterns.append((method, re.compile(path), handler))
        else:
            self._exact[(method, path)] = handler
            if public:
                self._public.add(path)

    def find(self, request: Request) -> Handler | None:
        handler = self._exact.get((request.method, request.path))
        if handler is not None:
            return handler
        for method, pattern, candidate in self._patterns:
            if method == request.method and pattern.fullmatch(request.path):
                return candidate
        return None

    def is_public(self, path: str) -> bool:
        return path in self._public or path.startswith(CONTROL_PREFIX)


def request_user(
    request: Request,
    accounts: Accounts,
    realm: str,
    nonce: str,
    *,
    any_cookie_is: str | None = None,
) -> str | None:
    """The user a request is from (session cookie, Digest or Basic auth), or None.
    `any_cookie_is`: the user of a request without valid cookie or credentials, for a device
    that keeps its sessions over a restart (wrong Digest credentials are still refused)."""
    cookie = session_cookie(request.header("cookie"))
    if cookie:
        user = accounts.session_user(cookie)
        if user is not None:
            return user
    auth = request.header("authorization")
    if auth[:7].lower() == "digest ":
        return digest_user(auth, request.method, accounts.users, realm, nonce)
    if auth[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if accounts.users.get(user) == password:
            return user
    return any_cookie_is
