"""Command authority without SROS2: a per-cell key, HMAC-signed verdicts and trajectories, replay checks.

The arm obeys two streams: the safety verdict (how fast it may move) and joint trajectories (where
it goes). Any process on the DDS domain can publish on either topic, so the arm only accepts
messages signed with the cell's key, a secret in a file only the cell's processes can read
(mode 0600). This is the software layer: on hardware, SROS2 (DDS-Security: authenticated
participants, access control per topic) comes first and the certified safety functions of the
robot controller and scanner stay in charge of stopping (see docs/safety.md).

Wire format (what the supervisor signs and the arm verifies)
------------------------------------------------------------
Verdict: `safety/verdict` is a diagnostic_msgs/DiagnosticArray whose status named
`smartcell/safety` (core.safety.verdict.VERDICT_STATUS_NAME) carries, besides the existing keys,

- `speed_scale`  the scale as `repr(float)` (core.safety.verdict.verdict_values already does this),
- `state`        the safety state value (`normal`, `reduced`, `protective_stop`, ...),
- `motion_id`    the newest motion sent (core.safety.verdict.MOTION_KEY; '' before the first one),
- `sequence`     (SEQUENCE_KEY) a decimal integer, strictly increasing over the verdicts of a cell,
                 also across supervisor restarts: start it at `time.time_ns()` when the process
                 starts and add 1 per verdict (the arm refuses a sequence not above the last one
                 it accepted: a replay; and one more than MAX_SEQUENCE_AHEAD_NS ahead of its own
                 wall clock: a forgery that would lock the supervisor out),
- `auth`         (AUTH_KEY) `sign_verdict(key, stamp_ns=<header.stamp as int ns>, sequence=...,
                 speed_scale=..., state=..., motion=...)`: 64 lower-case hex digits.

Trajectory: `arm/joint_trajectory` (trajectory_msgs/JointTrajectory) has no free field, so the
signature goes in `header.frame_id` as `<motion-id>#<hex>` (TRAJECTORY_SIGNATURE_SEPARATOR; the
motion id itself may not contain `#`). The signature is `sign_trajectory(key, trajectory_id=<motion
id>, stamp_ns=<header.stamp as int ns>, positions=<each point's positions in the arm's joint order,
core.robot.kinematics.JOINT_NAMES>, times_ns=<each point's time_from_start as int ns,
sec * 10**9 + nanosec>)`. Positions are signed in the arm's joint order, so reordering
`joint_names` on the wire breaks the signature. The header stamp must be set (it makes two sends
of the same motion differ); the arm also refuses a signature it has already accepted (a replay) and
starts a trajectory only when a verified verdict names its motion id.

Cell event: `cell/events` and `cell/events/replay` (std_msgs/String, one JSON object per event) carry
the event's fields and `auth` (AUTH_KEY) = `sign_event(key, event)`: the HMAC over every other field
of the object. The supervisor signs an event when it journals it, so the replayed copy is the same
bytes with the same signature; the MES bridge seals only events that verify.

Canonical encoding: a domain tag (verdict, trajectory and event signatures are never
interchangeable), then each field as a 4-byte big-endian length and its UTF-8 bytes; floats as
`repr(float(x))` (exact round trip of IEEE doubles), integers in decimal. An event is one field: its
JSON without `auth`, keys sorted, no spaces, UTF-8 (`canonical_event`; Python's json writes floats as
their repr, so parsing and re-encoding gives back the same text).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

CELL_KEY_BYTES = 32                      # HMAC-SHA256 key: 256 bits of os randomness
SIGNATURE_HEX_DIGITS = 64
SEQUENCE_KEY = 'sequence'
AUTH_KEY = 'auth'
TRAJECTORY_SIGNATURE_SEPARATOR = '#'
_VERDICT_TAG = b'smartcell/verdict/v1'
_TRAJECTORY_TAG = b'smartcell/trajectory/v1'
_EVENT_TAG = b'smartcell/event/v1'


class CellKeyError(ValueError):
    """The cell key file is missing, unsafe or malformed; the message names the file."""


def default_cell_key_path(cell_id: str, environ: dict[str, str] | None = None) -> Path:
    """`<ROS_HOME or ~/.ros>/smartcell/<cell_id>.key`: the key of a cell when `cell_key_file` is empty."""
    env = os.environ if environ is None else environ
    ros_home = env.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    if not cell_id or '/' in cell_id or cell_id in ('.', '..'):
        raise CellKeyError(f'cell_id {cell_id!r} cannot name a key file')
    return Path(ros_home) / 'smartcell' / f'{cell_id}.key'


def load_or_create_cell_key(path: str | os.PathLike) -> bytes:
    """The cell's key from `path`; a missing file is created with a fresh random key (mode 0600).

    Creation is atomic: the key is written to a private temporary file, then hard-linked to its name
    (which fails if another process created it first: then that key is read), so no process ever
    reads a half-written key. A file readable or writable by group or others, of the wrong size, a
    symbolic link or not a regular file is refused with CellKeyError naming it.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        _create_key_file(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        raise CellKeyError(f'cell key file {path}: cannot open ({exc.strerror}); it must be a regular file '
                           'readable by the cell processes only') from exc
    try:
        info = os.fstat(fd)          # of the file actually opened: no check-then-use race
        if not stat.S_ISREG(info.st_mode):
            raise CellKeyError(f'cell key file {path} is not a regular file')
        if info.st_mode & 0o077:
            raise CellKeyError(f'cell key file {path} is accessible by group or others '
                               f'(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}')
        if info.st_size != CELL_KEY_BYTES:
            raise CellKeyError(f'cell key file {path} has {info.st_size} bytes, expected {CELL_KEY_BYTES} '
                               '(delete it to create a new key, then restart every node of the cell)')
        key = os.read(fd, CELL_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != CELL_KEY_BYTES:
        raise CellKeyError(f'cell key file {path}: read {len(key)} bytes, expected {CELL_KEY_BYTES}')
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp')
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(CELL_KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)     # atomic and exclusive, like O_EXCL on the final name
    except FileExistsError:
        pass                         # another process of the cell won the race: use its key
    finally:
        os.unlink(temporary)


# -- signing -----------------------------------------------------------------------------------------
def _encode(tag: bytes, fields: Iterable[str]) -> bytes:
    parts = [tag]
    for text in fields:
        data = text.encode('utf-8')
        parts.append(len(data).to_bytes(4, 'big') + data)
    return b''.join(parts)


def _float(value: float) -> str:
    return repr(float(value))


def _mac(key: bytes, message: bytes) -> str:
    if len(key) != CELL_KEY_BYTES:
        raise CellKeyError(f'cell key must be {CELL_KEY_BYTES} bytes, got {len(key)}')
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _verdict_message(stamp_ns: int, sequence: int, speed_scale: float, state: str, motion: str) -> bytes:
    return _encode(_VERDICT_TAG, (str(int(stamp_ns)), str(int(sequence)), _float(speed_scale), state, motion))


def sign_verdict(key: bytes, *, stamp_ns: int, sequence: int, speed_scale: float, state: str, motion: str) -> str:
    """Hex HMAC-SHA256 of a verdict (see the module docstring for the fields and their wire form)."""
    return _mac(key, _verdict_message(stamp_ns, sequence, speed_scale, state, motion))


def verify_verdict(key: bytes, *, stamp_ns: int, sequence: int, speed_scale: float, state: str, motion: str,
                   signature: str | None) -> str | None:
    """None when the signature is the cell's over exactly these fields, else the reason it is not."""
    reason = _signature_format_reason(signature)
    if reason:
        return f'verdict {reason}'
    if not math.isfinite(float(speed_scale)):
        return 'verdict speed_scale is not finite'
    expected = sign_verdict(key, stamp_ns=stamp_ns, sequence=sequence, speed_scale=speed_scale,
                            state=state, motion=motion)
    if not hmac.compare_digest(expected, signature or ''):
        return ('verdict signature does not match (forged or altered verdict, or a process with another '
                'cell key)')
    return None


def _trajectory_message(trajectory_id: str, stamp_ns: int, positions: Sequence[Sequence[float]],
                        times_ns: Sequence[int]) -> bytes:
    if TRAJECTORY_SIGNATURE_SEPARATOR in trajectory_id:
        raise ValueError(f'trajectory id {trajectory_id!r} may not contain {TRAJECTORY_SIGNATURE_SEPARATOR!r}')
    if len(positions) != len(times_ns):
        raise ValueError(f'{len(positions)} points but {len(times_ns)} times')
    fields = [trajectory_id, str(int(stamp_ns)), str(len(times_ns))]
    for point, time_ns in zip(positions, times_ns):
        fields.append(str(int(time_ns)))
        fields.append(str(len(point)))
        fields.extend(_float(value) for value in point)
    return _encode(_TRAJECTORY_TAG, fields)


def sign_trajectory(key: bytes, *, trajectory_id: str, stamp_ns: int, positions: Sequence[Sequence[float]],
                    times_ns: Sequence[int]) -> str:
    """Hex HMAC-SHA256 of a trajectory: positions rad in the arm's joint order, times from start in ns."""
    return _mac(key, _trajectory_message(trajectory_id, stamp_ns, positions, times_ns))


def verify_trajectory(key: bytes, *, trajectory_id: str, stamp_ns: int, positions: Sequence[Sequence[float]],
                      times_ns: Sequence[int], signature: str | None) -> str | None:
    """None when the signature is the cell's over exactly this trajectory, else the reason."""
    reason = _signature_format_reason(signature)
    if reason:
        return f'trajectory {trajectory_id!r} {reason}'
    try:
        expected = sign_trajectory(key, trajectory_id=trajectory_id, stamp_ns=stamp_ns, positions=positions,
                                   times_ns=times_ns)
    except ValueError as exc:
        return f'trajectory {trajectory_id!r} cannot be verified: {exc}'
    if not hmac.compare_digest(expected, signature or ''):
        return (f'trajectory {trajectory_id!r} signature does not match (forged or altered trajectory, or a '
                'process with another cell key)')
    return None


def canonical_event(event: Mapping[str, Any]) -> str:
    """The signed text of a cell event: its JSON without `auth`, keys sorted, compact, UTF-8.

    Values that are not JSON are written as `str(value)`, as the event journal writes them, so the
    signer and a verifier reading the published JSON encode the same text. NaN and infinities are
    refused (ValueError): the journal writes them as null before signing.
    """
    body = {k: v for k, v in event.items() if k != AUTH_KEY}
    return json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False, default=str)


def sign_event(key: bytes, event: Mapping[str, Any]) -> str:
    """Hex HMAC-SHA256 of a cell event (every field but `auth`; see canonical_event)."""
    return _mac(key, _encode(_EVENT_TAG, (canonical_event(event),)))


def verify_event(key: bytes, event: Mapping[str, Any]) -> str | None:
    """None when the event's `auth` is the cell's signature over exactly its other fields, else why not."""
    what = f'cell event seq {event.get("seq")!r} ({event.get("type")!r})'
    signature = event.get(AUTH_KEY)
    reason = _signature_format_reason(signature if isinstance(signature, str) else
                                      (None if signature is None else repr(signature)))
    if reason:
        return f'{what} {reason}'
    try:
        expected = sign_event(key, event)
    except ValueError as exc:
        return f'{what} cannot be verified: {exc}'
    if not hmac.compare_digest(expected, str(signature)):
        return (f'{what} signature does not match (forged or altered event, or a process with another '
                'cell key)')
    return None


def split_signed_id(frame_id: str) -> tuple[str, str | None]:
    """`<motion-id>#<hex>` -> (motion id, signature); (frame_id, None) when unsigned."""
    motion, separator, signature = frame_id.rpartition(TRAJECTORY_SIGNATURE_SEPARATOR)
    if not separator:
        return frame_id, None
    return motion, signature


def signed_id(trajectory_id: str, signature: str) -> str:
    """The header.frame_id of a signed trajectory."""
    return f'{trajectory_id}{TRAJECTORY_SIGNATURE_SEPARATOR}{signature}'


def _signature_format_reason(signature: str | None) -> str | None:
    if not signature:
        return 'is not signed (no auth)'
    if len(signature) != SIGNATURE_HEX_DIGITS or any(c not in '0123456789abcdef' for c in signature):
        return f'signature is malformed (expected {SIGNATURE_HEX_DIGITS} lower-case hex digits)'
    return None


# -- replays -----------------------------------------------------------------------------------------
# The supervisor starts its sequence at its wall clock (ns) and adds one per verdict, so a genuine
# sequence never runs ahead of the wall clock. One far ahead is refused: accepted once (say, from a
# stray node in the instant before the ROS graph names it), it would lock the real supervisor out.
MAX_SEQUENCE_AHEAD_NS = 30 * 10**9     # the clock skew tolerated between the supervisor's and the arm's host


def sequence_reason(last_accepted: int | None, sequence: int, now_ns: int | None = None) -> str | None:
    """None when `sequence` may be accepted after `last_accepted` at wall time `now_ns`, else why not
    (a replay, or a sequence from the future)."""
    if last_accepted is not None and sequence <= last_accepted:
        return (f'verdict sequence {sequence} is not above the last accepted {last_accepted} '
                '(a replayed verdict, or a supervisor restarted with a lower sequence)')
    if now_ns is not None and sequence > now_ns + MAX_SEQUENCE_AHEAD_NS:
        return (f'verdict sequence {sequence} is {(sequence - now_ns) / 1e9:.0f} s ahead of this host\'s clock '
                f'(more than {MAX_SEQUENCE_AHEAD_NS / 1e9:.0f} s: the supervisor starts it at its wall clock; '
                'a forged sequence, or the two hosts\' clocks are not synchronised)')
    return None


class SequenceGuard:
    """The last accepted verdict sequence; a verdict must carry a greater one, not far ahead of `now_ns`."""

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.last_accepted: int | None = None
        self._now_ns = now_ns

    def check(self, sequence: int) -> str | None:
        return sequence_reason(self.last_accepted, sequence, self._now_ns())

    def accept(self, sequence: int) -> None:
        reason = self.check(sequence)
        if reason:
            raise ValueError(reason)
        self.last_accepted = sequence


class SeenSignatures:
    """Signatures of trajectories already accepted (bounded: the oldest are forgotten first)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, signature: str) -> bool:
        return signature in self._seen

    def add(self, signature: str) -> None:
        self._seen[signature] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
