"""Safety evidence log: append-only JSON Lines, hash-chained, keyed and anchored.

Every line is one JSON object with `kind` = 'cycle' (one supervisor cycle), 'event' (a state change,
stop, contact, mode change) or 'session' (a writer opened the log), and `stamp_s` (s) for cycles and
events. Non-finite floats (inf separation when nobody is there, NaN S_p) are written as the strings
"inf", "-inf", "nan" (JSON has no such numbers) and read back as floats.

Tamper evidence, the same construction as the MES audit trail (smartcell.core.mes.audit_trail):

* **Chain**: each line carries `seq` (1, 2, ...), `prev_hash` (the previous line's hash; 64 zeros for
  the first) and `hash`, the SHA-256 of its canonical JSON (sorted keys, compact, `hash`/`mac` left
  out). An edited line no longer matches its hash; a deleted, repeated or moved line breaks a link.
* **MAC**: with the cell key (smartcell.core.safety.authority.load_or_create_cell_key), each line also
  carries `mac`, an HMAC-SHA256 of the same bytes under a key derived for the evidence log. Someone
  who edits a line and re-computes every hash after it (re-sealing) cannot make valid MACs.
* **Anchor**: the head of the chain (seq, hash, MAC) is kept in a second place, `<log>.anchor`,
  replaced atomically when the writer opens the log, at every event, every `anchor_every` records
  and at close. A log that ends before its anchor lost its tail; a log whose record at the anchor's
  seq has another hash was re-sealed. Up to `anchor_every - 1` cycle records written after the last
  anchor (a crash) are not covered: events always are.

`verify_evidence` checks all of it and names each finding; an empty file or one without a chain is
never OK. `read_evidence` only parses (the report verifies first).

Durability: every record is flushed to the operating system at once, so a crash of the process
loses nothing written. `fsync` decides how often the OS is told to put it on disk, for a power
loss: 'events' (default: stops, faults, contacts are on disk before write() returns; cycles ride
along with the next event or anchor), 'always' (every record; costs a disk sync per cycle),
'never'. The log is synced before an anchor naming it is written, so after a power loss the
anchor is never ahead of the log (with 'never', neither is synced). A file-like target without a
file descriptor (io.StringIO) is flushed but cannot be synced, and has no anchor.

A writer that died mid-line leaves a truncated last line. The reader reports it; the next writer
starts the line after it with a 'session' record that names the partial line's SHA-256, so the
verifier accepts exactly that line and nothing else that is unreadable.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Mapping

from smartcell.core.mes.audit_trail import (GENESIS_HASH, Anchor, AnchorError, Finding, FindingKind, anchor_path_for,
                                           derive_key, key_id, read_anchor, record_hash, record_mac, seal,
                                           write_anchor)
from smartcell.core.safety.monitor import SafetyEvent, SafetyVerdict

FSYNC_POLICIES = ('events', 'always', 'never')
EVIDENCE_FORMAT = 'smartcell-evidence/2'
EVIDENCE_KEY_PURPOSE = 'smartcell safety evidence v1'
RECORD_KINDS = ('cycle', 'event')
SESSION_KIND = 'session'
_NON_FINITE = {'inf': math.inf, '-inf': -math.inf, 'nan': math.nan}
_TAIL_BLOCK_BYTES = 65536
MAX_FINDINGS_PER_KIND = 20     # a reversed million-record log needs a few examples, not a million


class EvidenceError(ValueError):
    """An evidence log that cannot be read or continued; the message names the file and line."""


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if hasattr(value, 'value') and not isinstance(value, (int, float, str)):   # enums
        return _encode(value.value)
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


def evidence_key(cell_key: bytes) -> bytes:
    """The key the evidence MACs are made with, derived from the cell key (never the cell key itself)."""
    return derive_key(cell_key, EVIDENCE_KEY_PURPOSE)


def _parse_chained(line: bytes) -> dict[str, Any] | None:
    """A line as a chained record (a dict with int seq and str hash/prev_hash), or None."""
    try:
        record = json.loads(line)
    except ValueError:              # JSONDecodeError and UnicodeDecodeError
        return None
    if not isinstance(record, dict) or isinstance(record.get('seq'), bool) or not isinstance(record.get('seq'), int) \
            or not isinstance(record.get('hash'), str) or not isinstance(record.get('prev_hash'), str):
        return None
    return record


def _read_tail(path: Path) -> tuple[bytes | None, bytes]:
    """(the last complete line or None, the bytes after it: a partial line of a crashed writer or b'')."""
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        data = b''
        while position > 0:
            step = min(_TAIL_BLOCK_BYTES, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
            end = data.rfind(b'\n')
            if end == -1:
                continue
            start = data.rfind(b'\n', 0, end)
            if start != -1 or position == 0:
                return data[start + 1:end], data[end + 1:]
        return None, data


class EvidenceWriter:
    """Appends sealed records to a path (append mode, never truncated) or an injected text stream.

    `key`: the cell key (bytes) or None (hash chain and anchor only: re-sealing is then detected by
    the anchor alone). `anchor_every`: cycle records between anchor updates. `anchor_path`: default
    `<log>.anchor` for a path target; a stream target has none. New arguments are keyword-only and
    optional, so `EvidenceWriter(path)` keeps working.
    """

    def __init__(self, target: str | Path | IO[str], fsync: str = 'events', *, key: bytes | None = None,
                 anchor_every: int = 100, anchor_path: str | Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f'fsync policy {fsync!r} is not one of {", ".join(FSYNC_POLICIES)}')
        if anchor_every < 1:
            raise ValueError(f'anchor_every must be >= 1, got {anchor_every}')
        self._fsync = fsync
        self._key = evidence_key(key) if key is not None else None
        self._anchor_every = anchor_every
        self._owned = isinstance(target, (str, Path))
        self._seq, self._prev = 0, GENESIS_HASH
        partial = b''
        if isinstance(target, (str, Path)):
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file() and path.stat().st_size > 0:
                partial = self._continue_chain(path)
            self._anchor_path: Path | None = Path(anchor_path) if anchor_path else anchor_path_for(path)
        else:
            self._anchor_path = Path(anchor_path) if anchor_path else None
        self._stream: IO[str] = open(target, 'a', encoding='utf-8') \
            if isinstance(target, (str, Path)) else target  # noqa: SIM115
        self._anchored_seq = -1
        self.records_written = 0
        self.anchor_error = ''
        if partial:
            self._stream.write('\n')        # end the crashed writer's line; the session record names it
        self._write_sealed(self._session_record(clock(), partial), sync=True)
        self._anchor()                      # a log is anchored from its first record on

    # -- opening -----------------------------------------------------------------------------------
    def _continue_chain(self, path: Path) -> bytes:
        """Take seq and hash from the log's last record; return a crashed writer's partial last line."""
        last, partial = _read_tail(path)
        if partial and _parse_chained(partial) is not None:
            last, partial = partial, b''    # complete record, only its newline missing: continue after it
            with open(path, 'ab') as handle:
                handle.write(b'\n')
        if last is None:
            return partial                  # the first writer died inside its first line: start afresh
        record = _parse_chained(last)
        if record is None:
            raise EvidenceError(f'evidence log {path} does not end with a hash-chained record (written before '
                                'logs were chained, or damaged); '
                                'move it aside to start a new log')
        self._seq, self._prev = record['seq'], record['hash']
        return partial

    def _session_record(self, now_unix_s: float, partial: bytes) -> dict[str, Any]:
        record: dict[str, Any] = {'kind': SESSION_KIND, 'format': EVIDENCE_FORMAT, 'opened_unix_s': now_unix_s,
                                  'key_id': key_id(self._key) if self._key is not None else '',
                                  'continues_seq': self._seq}
        if partial:
            record['partial_line_sha256'] = hashlib.sha256(partial).hexdigest()
            record['partial_line_bytes'] = len(partial)
        return record

    # -- writing -----------------------------------------------------------------------------------
    def write(self, record: Mapping[str, Any]) -> None:
        if record.get('kind') not in RECORD_KINDS or 'stamp_s' not in record:
            raise ValueError(f"an evidence record needs kind 'cycle' or 'event' and stamp_s, got {dict(record)!r}")
        is_event = record['kind'] == 'event'
        self._write_sealed(record, sync=self._fsync == 'always' or (self._fsync == 'events' and is_event))
        self.records_written += 1
        if is_event or self._seq - self._anchored_seq >= self._anchor_every:
            self._anchor()

    def _write_sealed(self, record: Mapping[str, Any], sync: bool) -> None:
        body = {k: v for k, v in _encode(record).items() if k not in ('seq', 'prev_hash', 'hash', 'mac')}
        body['seq'] = self._seq + 1
        sealed = seal(body, self._prev, self._key)
        line = json.dumps(sealed, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False)
        self._stream.write(line + '\n')
        self._stream.flush()
        self._seq, self._prev = sealed['seq'], sealed['hash']
        if sync:
            self._sync()

    def cycle(self, verdict: SafetyVerdict, applied_scale: float) -> None:
        self.write(cycle_record(verdict, applied_scale))

    def event(self, event: SafetyEvent) -> None:
        self.write(event_record(event))

    @property
    def head(self) -> Anchor:
        """seq and hash of the newest record (what the anchor names once written)."""
        return Anchor(self._seq, self._prev)

    def anchor(self) -> Anchor:
        """Sync the log and write its anchor now; the head it names (sent off the machine: the MES)."""
        self._anchor()
        return self.head

    def _anchor(self) -> None:
        if self._anchor_path is None:
            return
        if self._fsync != 'never':
            self._sync()                    # the records the anchor names are on disk first
        try:
            write_anchor(self._anchor_path, Anchor.make(self._seq, self._prev, self._key),
                         sync=self._fsync != 'never')
        except OSError as exc:
            # the log itself is intact; the missing anchor is reported by the verifier and here
            self.anchor_error = f'anchor {self._anchor_path} not written: {exc}'
            return
        self.anchor_error = ''
        self._anchored_seq = self._seq

    def _sync(self) -> None:
        try:
            descriptor = self._stream.fileno()
        except (AttributeError, io.UnsupportedOperation):
            return                          # an in-memory stream has nothing to sync
        os.fsync(descriptor)

    def close(self) -> None:
        if self._stream.closed:
            return
        if self._anchored_seq != self._seq:
            self._anchor()
        if self._owned:
            self._stream.close()

    def __enter__(self) -> 'EvidenceWriter':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- verification

@dataclass(frozen=True)
class VerificationResult:
    """What `verify_evidence` found. `ok` only for a non-empty, intact chain with no finding."""

    path: str
    records: int                            # chained records read (sessions included)
    cycles: int
    events: int
    last_seq: int
    findings: tuple[Finding, ...] = ()
    keyed: bool = False                     # the records carry MACs
    mac_checked: bool = False               # ... and they were checked under a key
    anchor_checked: bool = False
    truncated_tail: bool = False            # a crashed writer's partial last line (not a finding)
    notes: tuple[str, ...] = field(default_factory=tuple)
    finding_counts: Mapping[str, int] = field(default_factory=dict)   # kind -> how many (findings keeps examples)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def is_chain(self) -> bool:
        return not any(f.kind in (FindingKind.NOT_A_CHAIN, FindingKind.EMPTY) for f in self.findings)

    def kinds(self) -> set[FindingKind]:
        return {f.kind for f in self.findings}


class _Findings:
    """Findings in file order, at most MAX_FINDINGS_PER_KIND of each kind (so no kind hides another)."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self.counts: dict[FindingKind, int] = {}

    def add(self, kind: FindingKind, seq: int | None, detail: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= MAX_FINDINGS_PER_KIND:
            self.items.append(Finding(kind, seq, detail))


def _load_anchor(path: Path, anchor: Anchor | str | Path | None) -> tuple[Anchor | None, str]:
    if isinstance(anchor, Anchor):
        return anchor, ''
    anchor_file = Path(anchor) if anchor is not None else anchor_path_for(path)
    if not anchor_file.is_file():
        return None, f'no anchor file {anchor_file}'
    try:
        return read_anchor(anchor_file), ''
    except AnchorError as exc:
        return None, str(exc)


def verify_evidence(path: str | Path, key: bytes | None = None, anchor: Anchor | str | Path | None = None,
                    require_anchor: bool = True) -> VerificationResult:
    """Check an evidence log's chain, MACs (with the cell `key`) and anchor (default `<log>.anchor`).

    Findings: not_a_chain (binary, or no chained first record: e.g. an unchained older log),
    empty, unreadable_record at a line, broken_link at seq N (a link or the sequence does not follow:
    a record before it changed or records are missing), bad_hash at seq N (edited in place), bad_mac
    at seq N (re-sealed without the key), reordered (seq goes backwards), tail_missing after seq N,
    anchor_missing, anchor_mismatch. Raises EvidenceError only when the file cannot be opened.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f'evidence log {path} cannot be read: {exc}') from exc
    mac_key = evidence_key(key) if key is not None else None
    found = _Findings()
    lines = data.split(b'\n')
    complete, last = lines[:-1], lines[-1]      # `last` is b'' when the file ends with a newline
    numbered = [(n, line) for n, line in enumerate(complete, start=1) if line.strip()]
    truncated = False
    if last.strip():
        if _parse_chained(last) is None:
            truncated = True                    # a writer died mid-line: report, do not fail
        else:
            numbered.append((len(lines), last))
    base: dict[str, Any] = dict(path=str(path), truncated_tail=truncated)
    if not numbered:
        found.add(FindingKind.EMPTY, None, 'the log holds no records: nothing can be verified')
        anchor_value, problem = _load_anchor(path, anchor)
        if anchor_value is not None and anchor_value.seq > 0:
            found.add(FindingKind.TAIL_MISSING, None, f'the log is empty but its anchor names seq {anchor_value.seq}: '
                      'every record was removed')
        return VerificationResult(records=0, cycles=0, events=0, last_seq=0, findings=tuple(found.items), **base)
    first = _parse_chained(numbered[0][1])
    if first is None and len(numbered) > 1:        # the first writer died inside its first line?
        second = _parse_chained(numbered[1][1])
        if second is not None and second.get('partial_line_sha256') == hashlib.sha256(numbered[0][1]).hexdigest():
            first = second
    if first is None:
        try:
            legacy = json.loads(numbered[0][1])
        except ValueError:
            legacy = None
        what = ('an evidence log without a hash chain (written before logs were chained, or stripped of it)'
                if isinstance(legacy, dict) and legacy.get('kind') in RECORD_KINDS else
                'not an evidence log (its first line is not a hash-chained JSON record)')
        found.add(FindingKind.NOT_A_CHAIN, None, what)
        return VerificationResult(records=0, cycles=0, events=0, last_seq=0, findings=tuple(found.items), **base)

    anchor_value, anchor_problem = _load_anchor(path, anchor)
    anchor_hash_seen: str | None = None
    expected_seq, expected_prev = 1, GENESIS_HASH
    highest_seq = 0
    counts = {'cycle': 0, 'event': 0, SESSION_KIND: 0}
    keyed = False
    pending_partial: tuple[int, str] | None = None       # (line number, sha256) of an unreadable line
    records = 0
    for number, line in numbered:
        record = _parse_chained(line)
        if record is None:
            if pending_partial is not None:
                found.add(FindingKind.UNREADABLE, expected_seq, f'line {pending_partial[0]} is not a chained record')
            pending_partial = (number, hashlib.sha256(line).hexdigest())
            continue
        records += 1
        seq = record['seq']
        if pending_partial is not None:
            if record.get('kind') != SESSION_KIND or record.get('partial_line_sha256') != pending_partial[1]:
                found.add(FindingKind.UNREADABLE, seq, f'line {pending_partial[0]} is not a chained record '
                          '(and no writer session after it names it as its crashed line)')
            pending_partial = None
        if seq < expected_seq:
            found.add(FindingKind.REORDERED, seq, f'line {number}: seq {seq} follows seq {expected_seq - 1} '
                      '(records moved or repeated)')
        elif seq > expected_seq:
            found.add(FindingKind.BROKEN_LINK, seq,
                      f'line {number}: seq jumps from {expected_seq - 1} to {seq}: records {expected_seq}..{seq - 1} '
                      'are missing' if expected_seq > 1 else
                      f'line {number}: the log starts at seq {seq}: records 1..{seq - 1} are missing')
        elif record['prev_hash'] != expected_prev:
            found.add(FindingKind.BROKEN_LINK, seq, f'line {number}: prev_hash does not match the hash of seq '
                      f'{seq - 1} (a record before it was changed or replaced)')
        try:
            actual = record_hash(record)
        except ValueError as exc:
            actual = ''
            found.add(FindingKind.BAD_HASH, seq, f'line {number} has no canonical form: {exc}')
        if actual and actual != record['hash']:
            found.add(FindingKind.BAD_HASH, seq, f'line {number}: content does not match its hash (edited)')
        if record.get('mac'):
            keyed = True
        if mac_key is not None and actual == record['hash'] and not hmac.compare_digest(str(record.get('mac', '')),
                                                                     record_mac(mac_key, record)):
            found.add(FindingKind.BAD_MAC, seq, f'line {number}: {"wrong" if record.get("mac") else "no"} MAC under '
                      'the cell key (sealed without the key: changed and re-sealed, or inserted)')
        kind = record.get('kind')
        if kind in counts:
            counts[kind] += 1
        if anchor_value is not None and seq == anchor_value.seq and anchor_hash_seen is None:
            anchor_hash_seen = record['hash']
        highest_seq = max(highest_seq, seq)
        expected_seq, expected_prev = seq + 1, record['hash']     # carry on: later damage is found too
    if pending_partial is not None:
        found.add(FindingKind.UNREADABLE, expected_seq, f'line {pending_partial[0]} is not a chained record')

    notes = []
    if anchor_value is None:
        if require_anchor:
            found.add(FindingKind.ANCHOR_MISSING, None,
                      f'{anchor_problem}: deletion of the newest records cannot be ruled out')
    else:
        if mac_key is not None and not anchor_value.mac_ok(mac_key):
            which = 'a wrong' if anchor_value.mac else 'no'
            found.add(FindingKind.ANCHOR_MISMATCH, anchor_value.seq,
                      f'the anchor has {which} MAC under the cell key (written without the key)')
        if anchor_value.seq > highest_seq:
            found.add(FindingKind.TAIL_MISSING, highest_seq,
                      f'the log ends at seq {highest_seq} but its anchor names seq {anchor_value.seq}: the records '
                      f'after seq {highest_seq} were removed')
        elif anchor_hash_seen is not None and anchor_hash_seen != anchor_value.hash:
            found.add(FindingKind.ANCHOR_MISMATCH, anchor_value.seq,
                      f'record {anchor_value.seq} has hash {anchor_hash_seen[:16]}... but the anchor says '
                      f'{anchor_value.hash[:16]}... (the log was re-sealed after a change)')
    if keyed and mac_key is None:
        notes.append('the records carry MACs but no key was given: a log re-sealed after a change is only '
                     'caught by the anchor')
    if not keyed and mac_key is None:
        notes.append('the records carry no MACs (the writer had no cell key): a log re-sealed after a change '
                     'is only caught by the anchor')
    return VerificationResult(records=records, cycles=counts['cycle'], events=counts['event'], last_seq=highest_seq,
                              findings=tuple(found.items), keyed=keyed, mac_checked=mac_key is not None,
                              anchor_checked=anchor_value is not None, notes=tuple(notes),
                              finding_counts={k.value: n for k, n in found.counts.items()}, **base)


# ---------------------------------------------------------------- reading

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
    """Read a log's cycle and event records (session records are skipped; nothing is verified here).

    A truncated last line is kept aside in `truncated_tail`; a crashed writer's partial line inside
    the log is skipped when the session record after it names it; any other bad line raises.
    """
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
    bad: tuple[int, str, EvidenceError] | None = None
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = _parse(line, path, number)
        except EvidenceError as exc:
            if bad is not None:
                raise bad[2] from None
            bad = (number, line, exc)
            continue
        if bad is not None:
            if record.get('kind') != SESSION_KIND or record.get('partial_line_sha256') != \
                    hashlib.sha256(bad[1].encode('utf-8')).hexdigest():
                raise bad[2]
            bad = None
        if record['kind'] != SESSION_KIND:
            records.append(record)
    if bad is not None:
        raise bad[2]
    truncated = None
    if last.strip():
        try:
            record = _parse(last, path, len(lines))
            if record['kind'] != SESSION_KIND:
                records.append(record)
        except EvidenceError:
            truncated = last                   # a writer died mid-line: report, do not fail
    return EvidenceLog(records, truncated, str(path))


def _parse(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f'{path} line {number} is not JSON: {exc.msg}') from exc
    if isinstance(record, dict) and record.get('kind') == SESSION_KIND:
        return record
    if not isinstance(record, dict) or record.get('kind') not in RECORD_KINDS \
            or not isinstance(record.get('stamp_s'), (int, float)):
        raise EvidenceError(f"{path} line {number} is not an evidence record (needs kind 'cycle' or 'event' "
                            'and a numeric stamp_s)')
    return _decode(record)
