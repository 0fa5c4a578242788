"""Who may change what: the operator authorisation policy and signed operator requests, free of ROS.

Three kinds of request can hand the arm more freedom near people or undo a deliberate stop, and need
an authorised operator (role `operator` in the same users file the MES side's OPC UA server reads,
{name: {password_hash, role}}, PBKDF2-SHA256 hashes made by `python -m smartcell.io.opcua hash-password`):

* `mode:collaborative`: the arm works beside a person under PFL speed caps instead of stopping;
* `reset` from EMERGENCY_STOP: the deliberate stop is undone;
* the first `start` after an emergency stop (reset alone only brings the cell to IDLE).

Everything else (start from IDLE, pause, resume, stop, emergency stop, the more restrictive modes)
stays open to anyone who can call the `cell/*` Trigger services: an emergency stop must never wait
for a login.

The wire: std_srvs/Trigger carries no credentials, and a password must never cross DDS in the clear
(there is no SROS2 encryption in this build). The operator's client derives a per-user key from the
password, `K_user = PBKDF2-SHA256(password, salt, iterations)`, which is exactly the digest stored in
the users file, and sends a request signed with it:

    {"user": "alice", "request": "reset", "stamp_ns": 1764600000000000000, "nonce": "<hex>",
     "mac": HMAC-SHA256(K_user, "smartcell-operator-v1|user|request|stamp_ns|nonce")}

The verifier accepts it only with a valid MAC, a stamp within `window_s` of its own wall clock and a
nonce it has not seen inside that window (a replay is refused by name). The salt and iteration count
are not secret (as in SCRAM): `login_parameters(user)` gives them to the client, and an unknown name
gets stable made-up ones, so the answer does not tell which users exist. The users file is
password-equivalent for this path and must be readable only by the supervisor (mode 0600), like the
cell key.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from smartcell.core.cell.states import State, Transition
from smartcell.core.params import ConfigError

ROLES = ('operator', 'viewer')
AUTHORISED_ROLE = 'operator'
MODE_PREFIX = 'mode:'
# Requests a signed operator request may carry (the cell/* names and the safety modes).
SIGNED_REQUESTS = ('start', 'stop', 'pause', 'resume', 'reset', 'emergency_stop',
                   'mode:automatic', 'mode:collaborative', 'mode:manual_reduced')
_DOMAIN = b'smartcell-operator-v1'
DEFAULT_ITERATIONS = 200_000
MAX_REQUEST_BYTES = 4096            # a request is a few hundred bytes; anything larger is refused unread


@dataclass(frozen=True)
class Operator:
    """An authenticated person: name, role from the users file, and how they were authenticated."""

    name: str
    role: str
    via: str = 'signed request'

    def __str__(self) -> str:
        return f'{self.name} ({self.role}, {self.via})'


@dataclass(frozen=True)
class OperatorUser:
    name: str
    role: str
    iterations: int
    salt: bytes
    key: bytes              # the PBKDF2 digest: K_user


def _parse_hash(stored: str) -> tuple[int, bytes, bytes]:
    scheme, iterations, salt, digest = stored.split('$')
    if scheme != 'pbkdf2_sha256' or int(iterations) < 1:
        raise ValueError(f'unknown hash scheme {scheme!r}')
    return int(iterations), bytes.fromhex(salt), bytes.fromhex(digest)


def load_operator_users(path: str | Path) -> dict[str, OperatorUser]:
    """The users file of the MES side ({name: {password_hash, role}}); ConfigError names file, user and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
        document = yaml.safe_load(text) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f'operator users file {path}: unreadable: {exc}') from exc
    if not isinstance(document, dict):
        raise ConfigError(f'operator users file {path}: must map user names to {{password_hash, role}}')
    users = {}
    for name, entry in document.items():
        if not isinstance(entry, dict) or set(entry) != {'password_hash', 'role'}:
            raise ConfigError(f'operator users file {path}: user {name!r} must have exactly password_hash and role')
        if entry['role'] not in ROLES:
            raise ConfigError(f'operator users file {path}: {name}.role is {entry["role"]!r}; accepted: '
                              f'{", ".join(ROLES)}')
        try:
            iterations, salt, key = _parse_hash(str(entry['password_hash']))
        except ValueError as exc:
            raise ConfigError(f'operator users file {path}: {name}.password_hash is not a pbkdf2_sha256 hash '
                              f'from `python -m smartcell.io.opcua hash-password`: {exc}') from exc
        users[str(name)] = OperatorUser(str(name), entry['role'], iterations, salt, key)
    return users


def user_key(password: str, salt: bytes, iterations: int) -> bytes:
    """K_user as the operator's client derives it from the password and the login parameters."""
    return hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations)


def _mac(key: bytes, user: str, request: str, stamp_ns: int, nonce: str) -> str:
    message = b'|'.join((_DOMAIN, user.encode(), request.encode(), str(stamp_ns).encode(), nonce.encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_request(key: bytes, user: str, request: str, stamp_ns: int, nonce: str | None = None) -> str:
    """The JSON a client sends on cell/operator_request."""
    nonce = nonce if nonce is not None else os.urandom(12).hex()
    return json.dumps({'user': user, 'request': request, 'stamp_ns': stamp_ns, 'nonce': nonce,
                       'mac': _mac(key, user, request, stamp_ns, nonce)})


@dataclass(frozen=True)
class VerifiedRequest:
    """A request checked: `operator` set and `reason` empty when it may be acted on."""

    request: str
    operator: Operator | None
    reason: str
    user: str = ''


class RequestVerifier:
    """Checks signed operator requests: MAC with the user's key, freshness, no replay."""

    def __init__(self, users: Mapping[str, OperatorUser], secret: bytes, window_s: float = 5.0) -> None:
        self._users = dict(users)
        self._secret = secret             # makes the stable made-up salt of unknown names
        self._window_ns = int(window_s * 1e9)
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()

    def login_parameters(self, user: str) -> dict[str, Any]:
        known = self._users.get(user)
        if known is not None:
            return {'user': user, 'salt': known.salt.hex(), 'iterations': known.iterations}
        fake = hmac.new(self._secret, b'salt|' + user.encode(), hashlib.sha256).digest()[:16]
        return {'user': user, 'salt': fake.hex(), 'iterations': DEFAULT_ITERATIONS}

    def verify(self, raw: str, now_ns: int) -> VerifiedRequest:
        if len(raw) > MAX_REQUEST_BYTES:
            return VerifiedRequest('', None, f'request of {len(raw)} bytes refused (at most {MAX_REQUEST_BYTES})')
        try:
            document = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            return VerifiedRequest('', None, f'request is not JSON: {exc}')
        if not isinstance(document, dict) or set(document) != {'user', 'request', 'stamp_ns', 'nonce', 'mac'}:
            return VerifiedRequest('', None, 'request must be a JSON object with exactly user, request, stamp_ns, '
                                   'nonce, mac')
        user, request, stamp, nonce, mac = (document[k] for k in ('user', 'request', 'stamp_ns', 'nonce', 'mac'))
        if not all(isinstance(v, str) for v in (user, request, nonce, mac)) or isinstance(stamp, bool) \
                or not isinstance(stamp, int):
            return VerifiedRequest('', None, 'user, request, nonce and mac must be strings, stamp_ns an integer')
        if request not in SIGNED_REQUESTS:
            accepted = ', '.join(SIGNED_REQUESTS)
            return VerifiedRequest(request, None, f'unknown request {request!r}; accepted: {accepted}', user)
        known = self._users.get(user)
        # The MAC is computed for unknown users too, so timing does not tell which names exist.
        key = known.key if known is not None else self._secret
        if not hmac.compare_digest(_mac(key, user, request, stamp, nonce), mac) or known is None:
            return VerifiedRequest(request, None, f'bad signature or unknown user {user!r}', user)
        if abs(stamp - now_ns) > self._window_ns:
            return VerifiedRequest(request, None, f'request stamped {(stamp - now_ns) * 1e-9:+.1f} s from now '
                                   f'(accepted within {self._window_ns * 1e-9:g} s): stale or replayed', user)
        self._forget(now_ns)
        if (user, nonce) in self._seen:
            return VerifiedRequest(request, None, f'replayed request (nonce {nonce!r} of {user!r} already used)', user)
        self._seen[(user, nonce)] = stamp
        return VerifiedRequest(request, Operator(user, known.role), '', user)

    def _forget(self, now_ns: int) -> None:
        while self._seen:
            key, stamp = next(iter(self._seen.items()))
            if stamp >= now_ns - self._window_ns:
                break
            self._seen.popitem(last=False)
        while len(self._seen) > 100_000:      # bounded even under a flood of fresh nonces
            self._seen.popitem(last=False)


def _refuse_constant(name: str) -> float:
    raise ValueError(f'{name} is not JSON')


class OperatorPolicy:
    """Which requests need an authorised operator, and whether `who` is one.

    Stateful in one respect only: it watches the cell's transitions (register `observe` as a
    transition callback) to know whether an emergency stop happened since the last authorised start.
    """

    def __init__(self, users_configured: bool = True, role: str = AUTHORISED_ROLE) -> None:
        self._users_configured = users_configured
        self._role = role
        self.estop_since_start = False

    def observe(self, transition: Transition) -> None:
        if transition.target is State.EMERGENCY_STOP:
            self.estop_since_start = True

    def needs(self, request: str, state: State) -> str:
        """Why `request` in `state` needs an authorised operator ('' when it does not)."""
        if request == MODE_PREFIX + 'collaborative':
            return 'collaborative mode (the arm works beside a person)'
        if request == 'reset' and state is State.EMERGENCY_STOP:
            return 'reset after an emergency stop'
        if request == 'start' and self.estop_since_start and state is State.IDLE:   # elsewhere the table refuses
            return 'the first start after an emergency stop'
        return ''

    def refusal(self, who: Any) -> str:
        """'' when `who` is an authorised operator, else why not."""
        if not isinstance(who, Operator):
            if not self._users_configured:
                return ('no operator users are configured (supervisor.operator_users_file), so nobody can '
                        'authorise it')
            return (f'{who!s} is not an authenticated operator: send a signed request on cell/operator_request '
                    '(docs/safety.md, operator authorisation)')
        if who.role != self._role:
            return f'{who.name} has role {who.role!r}, not {self._role!r}'
        return ''

    def granted(self, request: str) -> None:
        """A privileged request was carried out."""
        if request == 'start':
            self.estop_since_start = False

