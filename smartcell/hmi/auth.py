"""Logins of the operator station: the MES users file (name, role, PBKDF2 hash), bearer sessions.

Viewing needs no login; every action needs a session of a user whose role is `operator` (a
`viewer` may log in and look, nothing more). Tokens travel in an Authorization header, never in a
cookie, so another web page open in the same browser cannot press a button (no CSRF).
Repeated wrong passwords lock the user name for `lockout_s` (guessing at shop-floor speed is slow).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

ACTION_ROLES = ('operator',)
MAX_FAILURES = 5


class UserEntry(Protocol):
    """A users-file entry (read-only, as smartcell.io.opcua's frozen OpcUaUser)."""

    @property
    def name(self) -> str: ...

    @property
    def password_hash(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    expires_s: float


@dataclass(frozen=True)
class Refusal:
    status: int          # HTTP status: 401 no/expired login, 403 role, 429 locked
    reason: str


class Sessions:
    """Users from the users file; `clock` (s, monotonic) injected so tests drive expiry and lockout."""

    def __init__(self, users: Sequence[UserEntry], check_password: Callable[[str, str], bool],
                 clock: Callable[[], float], timeout_s: float, lockout_s: float = 60.0) -> None:
        self._users = {u.name: u for u in users}
        self._check = check_password
        self._clock = clock
        self._timeout_s = timeout_s
        self._lockout_s = lockout_s
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}

    @property
    def enabled(self) -> bool:
        """False without users: the station is view-only."""
        return bool(self._users)

    def login(self, name: str, password: str) -> tuple[str, Session] | Refusal:
        now = self._clock()
        if not self._users:
            return Refusal(403, 'this station has no users file: view only')
        recent = [t for t in self._failures.get(name, []) if now - t < self._lockout_s]
        self._failures[name] = recent
        if len(recent) >= MAX_FAILURES:
            return Refusal(429, f'too many wrong passwords for {name!r}: try again in {self._lockout_s:.0f} s')
        user = self._users.get(name)
        if user is None or not self._check(password, user.password_hash):
            recent.append(now)
            return Refusal(401, 'wrong user name or password')
        self._failures.pop(name, None)
        token = secrets.token_urlsafe(32)
        session = Session(user.name, user.role, now + self._timeout_s)
        self._sessions[token] = session
        return token, session

    def logout(self, token: str) -> None:
        self._sessions.pop(token, None)

    def session(self, token: str) -> Session | Refusal:
        """The session of a bearer token, or why there is none."""
        if not token:
            return Refusal(401, 'log in first: actions need an operator login')
        found = self._sessions.get(token)
        if found is None:
            return Refusal(401, 'unknown session: log in again')
        if self._clock() >= found.expires_s:
            self._sessions.pop(token, None)
            return Refusal(401, 'session expired: log in again')
        return found

    def authorize(self, token: str) -> Session | Refusal:
        """The session if it may act, else a refusal naming why."""
        found = self.session(token)
        if isinstance(found, Refusal):
            return found
        if found.role not in ACTION_ROLES:
            return Refusal(403, f'user {found.user!r} has role {found.role!r}: actions need role operator')
        return found
