"""Safety evidence log: append-only JSON Lines, one record per supervisor cycle and per event.

Every line is one JSON object with `kind` = 'cycle' or 'event' and `stamp_s` (s). Non-finite
floats (inf separation when nobody is there, NaN S_p) are written as the strings "inf", "-inf",
"nan" (JSON has no such numbers) and read back as floats.

Durability: every record is flushed to the operating system at once, so a crash of the process
loses nothing written. `fsync` decides how often the OS is told to put it on disk, for a power
loss: 'events' (default: stops, faults, contacts are on disk before write() returns; cycles ride
along with the next event), 'always' (every record; costs a disk sync per cycle), 'never'.
A file-like target without a file descriptor (io.StringIO) is flushed but cannot be synced.

The reader tolerates a truncated last line (a crash mid-write) and reports it; a bad line
anywhere else is an EvidenceError naming the line.
"""
from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping

from smartcell.core.safety import SafetyEvent, SafetyVerdict

FSYNC_POLICIES = ('events', 'always', 'never')
_NON_FINITE = {'inf': math.inf, '-inf': -math.inf, 'nan': math.nan}


class EvidenceError(ValueError):
    """An evidence log that cannot be read; the message names the file and line."""


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if hasattr(value, 'value') and not isinstance(value, (int, float, str)):   # enums
        return value.value
    if hasattr(value, 'item'):                                                    # numpy scalars
        return _encode(value.item())
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def cycle_record(verdict: SafetyVerdict, applied_scale: float) -> dict[str, Any]:
    """One supervisor cycle; `applied_scale` is the scale the arm reported applying at that time."""
    return {'kind': 'cycle', 'stamp_s': verdict.stamp_s, 'mode': verdict.mode.value, 'state': verdict.state.value,
            'zone': verdict.zone, 'separation_m': verdict.separation_m,
            'protective_separation_m': verdict.protective_distance_m, 'margin_m': verdict.margin_m,
            'allowed_speed_mps': verdict.allowed_speed_mps, 'human_speed_mps': verdict.human_speed_mps,
            'robot_speed_toward_human_mps': verdict.robot_speed_toward_human_mps,
            'target_scale': verdict.target_scale, 'speed_scale': verdict.speed_scale,
            'applied_scale': applied_scale, 'closest_person_index': verdict.closest_person_index,
            'reason': verdict.reason}


def event_record(event: SafetyEvent) -> dict[str, Any]:
    return {'kind': 'event', 'event': event.kind, 'stamp_s': event.stamp_s, 'state': event.state.value,
            'zone': event.zone, 'speed_scale': event.speed_scale, 'reason': event.reason,
            'details': dict(event.details)}


class EvidenceWriter:
    """Appends records to a path (opened in append mode, never truncated) or an injected text stream."""

    def __init__(self, target: str | Path | IO[str], fsync: str = 'events') -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f'fsync policy {fsync!r} is not one of {", ".join(FSYNC_POLICIES)}')
        self._fsync = fsync
        self._owned = isinstance(target, (str, Path))
        if self._owned:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._stream: IO[str] = open(target, 'a', encoding='utf-8') if self._owned else target  # noqa: SIM115
        self.records_written = 0

    def write(self, record: Mapping[str, Any]) -> None:
        if record.get('kind') not in ('cycle', 'event') or 'stamp_s' not in record:
            raise ValueError(f"an evidence record needs kind 'cycle' or 'event' and stamp_s, got {dict(record)!r}")
        line = json.dumps(_encode(record), allow_nan=False, separators=(',', ':'))
        self._stream.write(line + '\n')
        self._stream.flush()
        if self._fsync == 'always' or (self._fsync == 'events' and record['kind'] == 'event'):
            self._sync()
        self.records_written += 1

    def cycle(self, verdict: SafetyVerdict, applied_scale: float) -> None:
        self.write(cycle_record(verdict, applied_scale))

    def event(self, event: SafetyEvent) -> None:
        self.write(event_record(event))

    def _sync(self) -> None:
        try:
            descriptor = self._stream.fileno()
        except (AttributeError, io.UnsupportedOperation):
            return                          # an in-memory stream has nothing to sync
        os.fsync(descriptor)

    def close(self) -> None:
        if self._owned and not self._stream.closed:
            self._stream.close()

    def __enter__(self) -> 'EvidenceWriter':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class EvidenceLog:
    records: list[dict[str, Any]]
    truncated_tail: str | None       # the unreadable last line of a crashed writer, if any
    path: str = ''

    def cycles(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r['kind'] == 'cycle']

    def events(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r['kind'] == 'event']


def read_evidence(path: str | Path) -> EvidenceLog:
    """Read a log; a truncated last line is kept aside in `truncated_tail`, any other bad line raises."""
    path = Path(path)
    if not path.is_file():
        raise EvidenceError(f'evidence log not found: {path}')
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f'evidence log {path} cannot be read as UTF-8 text: {exc}') from exc
    lines = text.split('\n')
    complete, last = lines[:-1], lines[-1]     # `last` is '' when the file ends with a newline
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        records.append(_parse(line, path, number))
    truncated = None
    if last.strip():
        try:
            records.append(_parse(last, path, len(lines)))
        except EvidenceError:
            truncated = last                   # a writer died mid-line: report, do not fail
    return EvidenceLog(records, truncated, str(path))


def _parse(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f'{path} line {number} is not JSON: {exc.msg}') from exc
    if not isinstance(record, dict) or record.get('kind') not in ('cycle', 'event') \
            or not isinstance(record.get('stamp_s'), (int, float)):
        raise EvidenceError(f"{path} line {number} is not an evidence record (needs kind 'cycle' or 'event' "
                            'and a numeric stamp_s)')
    return _decode(record)
