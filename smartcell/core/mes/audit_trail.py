"""Audit trail: production and safety records chained by SHA-256, keyed by HMAC, anchored.

Each chained record carries the previous chained record's hash (`prev_hash`) and its own `hash`,
the SHA-256 of its canonical JSON (sorted keys, no spaces, `hash` and `mac` left out, `prev_hash`
in). Changing any byte of a record, deleting one or reordering two breaks the chain at that record,
and `verify_chain` names the first one that does not match.

A hash chain alone does not stop someone who changes a record and then re-computes every hash after
it (re-sealing), nor someone who deletes the newest records (the rest still links). Two more checks:

* **MAC**: with a per-cell key, each record also carries `mac`, an HMAC-SHA256 of the same canonical
  bytes under a key derived from the cell key for this purpose (`derive_key`). Without the key a
  changed record cannot be given a valid MAC, so re-sealing is detected by anyone holding the key.
* **Anchor**: the writer keeps the latest (position, hash) in a second place, a small sidecar file
  replaced atomically (`write_anchor`), MAC'd too when keyed. A chain shorter than its anchor lost
  its tail; a chain whose record at the anchor's position has another hash was re-sealed.

The same primitives seal the safety evidence log (smartcell.core.safety.evidence). Pure stdlib.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping

GENESIS_HASH = '0' * 64     # prev_hash of the first record of a trail
UNSEALED_FIELDS = ('hash', 'mac')   # what the hash and the MAC cannot cover: themselves
ANCHOR_FORMAT = 'smartcell-anchor/1'
AUDIT_KEY_PURPOSE = 'smartcell audit trail v1'


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed and MAC'd: every field but `hash`/`mac`, sorted keys, compact separators.

    The writers (outbox, evidence log) store strict JSON, converting non-finite floats first (see
    smartcell.core.jsonio). A NaN token is still hashed as Python writes it, so records stored
    before that conversion keep verifying.
    """
    payload = {k: v for k, v in record.items() if k not in UNSEALED_FIELDS}
    return json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def derive_key(cell_key: bytes, purpose: str) -> bytes:
    """A sub-key per use (audit trail, evidence log), so one leaked MAC stream says nothing of another."""
    if not cell_key:
        raise ValueError('the cell key is empty')
    return hmac.new(cell_key, purpose.encode('utf-8'), hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short public fingerprint of a (derived) key: tells which key sealed a log, reveals nothing."""
    return hashlib.sha256(b'smartcell key id\x00' + key).hexdigest()[:16]


def record_mac(key: bytes, record: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical_bytes(record), hashlib.sha256).hexdigest()


def seal(record: Mapping[str, Any], prev_hash: str, key: bytes | None = None) -> dict[str, Any]:
    """The record with `prev_hash` set, its `hash` computed and, with a (derived) key, its `mac`."""
    sealed = {k: v for k, v in record.items() if k not in UNSEALED_FIELDS}
    sealed['prev_hash'] = prev_hash
    sealed['hash'] = record_hash(sealed)
    if key is not None:
        sealed['mac'] = record_mac(key, sealed)
    return sealed


# ---------------------------------------------------------------- anchors

@dataclass(frozen=True)
class Anchor:
    """The newest sealed record, kept apart from the chain: `seq` is its 1-based position, `hash` its hash."""

    seq: int
    hash: str
    mac: str = ''               # HMAC of (seq, hash) under the chain's derived key; '' when unkeyed

    def payload(self) -> dict[str, Any]:
        return {'format': ANCHOR_FORMAT, 'seq': self.seq, 'hash': self.hash}

    @classmethod
    def make(cls, seq: int, hash_: str, key: bytes | None) -> 'Anchor':
        anchor = cls(seq, hash_)
        return cls(seq, hash_, record_mac(key, anchor.payload())) if key is not None else anchor

    def mac_ok(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, record_mac(key, self.payload()))


class AnchorError(ValueError):
    """An anchor file that cannot be read; the message names it."""


def anchor_path_for(path: str | Path) -> Path:
    """The sidecar beside a log or database: `<file>.anchor`."""
    path = Path(path)
    return path.with_name(path.name + '.anchor')


def write_anchor(path: str | Path, anchor: Anchor, sync: bool = True) -> None:
    """Replace the anchor file atomically (write a temporary file, fsync it, rename over the old one).

    A reader sees the old anchor or the new one, never half of one. The anchor is written after the
    records it names are flushed, so after a process crash it is never ahead of the chain.
    """
    path = Path(path)
    text = json.dumps({**anchor.payload(), 'mac': anchor.mac}, sort_keys=True, separators=(',', ':'))
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with open(temporary, 'w', encoding='utf-8') as handle:
        handle.write(text + '\n')
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_anchor(path: str | Path) -> Anchor:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AnchorError(f'anchor {path} cannot be read: {exc}') from exc
    if not isinstance(data, dict) or data.get('format') != ANCHOR_FORMAT or not isinstance(data.get('seq'), int) \
            or not isinstance(data.get('hash'), str) or not isinstance(data.get('mac', ''), str):
        raise AnchorError(f'anchor {path} is not a {ANCHOR_FORMAT} anchor')
    return Anchor(data['seq'], data['hash'], data.get('mac', ''))


# ---------------------------------------------------------------- findings

class FindingKind(str, Enum):
    """What a verifier found; any finding makes the chain not OK."""

    NOT_A_CHAIN = 'not_a_chain'          # the file holds no hash-chained records at all
    EMPTY = 'empty'                      # nothing to verify: an empty file proves nothing
    UNREADABLE = 'unreadable_record'     # a record inside the chain is not JSON
    BROKEN_LINK = 'broken_link'          # prev hash or sequence does not follow (changed, removed record)
    BAD_HASH = 'bad_hash'                # content does not match its own hash (edited in place)
    BAD_MAC = 'bad_mac'                  # missing or wrong MAC under the cell key (re-sealed)
    REORDERED = 'reordered'              # sequence numbers go backwards
    TAIL_MISSING = 'tail_missing'        # the chain ends before the anchor's record
    ANCHOR_MISSING = 'anchor_missing'    # no anchor where one must be: tail deletion cannot be ruled out
    ANCHOR_MISMATCH = 'anchor_mismatch'  # the anchor names another hash (or a forged anchor)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    seq: int | None         # 1-based position (or sequence number) where it was found; None: whole file
    detail: str

    def __str__(self) -> str:
        where = '' if self.seq is None else f' at seq {self.seq}'
        return f'{self.kind.value}{where}: {self.detail}'


MAX_FINDINGS_PER_KIND = 20   # examples per kind: a reversed million-record log needs a few, and no kind hides another


@dataclass(frozen=True)
class AuditResult:
    """Outcome of `verify_chain`. `ok` only when records were checked and nothing was found."""

    ok: bool
    checked: int                      # records checked
    first_bad_index: int | None = None  # 0-based position of the first bad record in the trail
    first_bad_id: str = ''            # record_id of the first bad record ('' when it could not be read)
    reason: str = ''                  # the first finding, in words
    findings: tuple[Finding, ...] = ()
    mac_checked: bool = False         # MACs were verified under a key
    keyed: bool = False               # the records carry MACs
    anchor_checked: bool = False
    head: Anchor | None = None        # position and hash of the last record
    finding_counts: Mapping[str, int] = field(default_factory=dict)   # kind -> how many (findings keeps examples)

    @property
    def is_chain(self) -> bool:
        return not any(f.kind is FindingKind.NOT_A_CHAIN for f in self.findings)


def verify_chain(records: Iterable[Mapping[str, Any] | Exception], key: bytes | None = None,
                 anchor: Anchor | None = None, require_anchor: bool = False,
                 anchor_problem: str = '') -> AuditResult:
    """Check every link, every MAC (with `key`, the derived audit key) and the anchor.

    An Exception in the input stands for a record that could not be parsed. The first record that is
    not a JSON object with `hash` and `prev_hash` makes the trail "not a chain" when it is the first
    record, a broken link anywhere else. `require_anchor`: a missing anchor is a finding
    (`anchor_problem` says why it is missing, e.g. an unreadable anchor file).
    """
    findings: list[Finding] = []
    counts: dict[FindingKind, int] = {}
    first_bad: tuple[int, str] | None = None
    expected_prev = GENESIS_HASH
    hashes: list[str] = []
    keyed = False

    def add(kind: FindingKind, index: int | None, detail: str, record_id: str = '') -> None:
        nonlocal first_bad
        if first_bad is None:
            first_bad = (-1 if index is None else index, record_id)
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= MAX_FINDINGS_PER_KIND:
            findings.append(Finding(kind, None if index is None else index + 1, detail))

    index = -1
    for index, record in enumerate(records):
        chained = isinstance(record, Mapping) and isinstance(record.get('hash'), str) \
            and isinstance(record.get('prev_hash'), str)
        if not chained or not isinstance(record, Mapping):
            if index == 0:
                what = f'cannot be read ({record})' if isinstance(record, Exception) else \
                    'has no hash and prev_hash'
                add(FindingKind.NOT_A_CHAIN, None, f'the first record {what}')
                return _result(findings, counts, first_bad, 0, key, keyed, anchor, hashes)
            add(FindingKind.UNREADABLE, index, f'record {index} cannot be read: {record}' if
                isinstance(record, Exception) else f'record {index} has no hash and prev_hash')
            hashes.append('')
            expected_prev = ''
            continue
        record_id = str(record.get('record_id', ''))
        if record.get('mac'):
            keyed = True
        if record['prev_hash'] != expected_prev:
            add(FindingKind.BROKEN_LINK, index,
                f'record {index} ({record_id}) has prev_hash {record["prev_hash"][:16]}..., expected '
                f'{expected_prev[:16]}... (a record before it was changed, removed or reordered)', record_id)
        try:
            actual = record_hash(record)
        except ValueError as exc:
            actual = ''
            add(FindingKind.BAD_HASH, index, f'record {index} ({record_id}) has no canonical form: {exc}', record_id)
        if actual and record['hash'] != actual:
            add(FindingKind.BAD_HASH, index,
                f'record {index} ({record_id}) content does not match its hash (it was changed)', record_id)
        if key is not None and actual == record['hash'] and not hmac.compare_digest(str(record.get('mac', '')),
                                                                  record_mac(key, record)):
            add(FindingKind.BAD_MAC, index,
                f'record {index} ({record_id}) has {"a wrong" if record.get("mac") else "no"} MAC under the '
                'cell key (sealed without the key: changed and re-sealed, or inserted)', record_id)
        expected_prev = record['hash']        # carry on from what is there: later damage is found too
        hashes.append(record['hash'])
    count = index + 1
    if count == 0:
        add(FindingKind.EMPTY, None, 'the trail holds no chained records: nothing can be verified')
    anchor_checked = _check_anchor(anchor, hashes, key, require_anchor, add, anchor_problem)
    return _result(findings, counts, first_bad, count, key, keyed, anchor if anchor_checked else None, hashes)


def _check_anchor(anchor: Anchor | None, hashes: list[str], key: bytes | None, required: bool, add,
                  problem: str = '') -> bool:
    if anchor is None:
        if required:
            add(FindingKind.ANCHOR_MISSING, None,
                f'{problem or "no anchor"}: deletion of the newest records cannot be ruled out')
        return False
    if key is not None and not anchor.mac_ok(key):
        add(FindingKind.ANCHOR_MISMATCH, None,
            f'the anchor (seq {anchor.seq}) has {"a wrong" if anchor.mac else "no"} MAC under the cell key '
            '(written without the key)')
    if anchor.seq > len(hashes):
        add(FindingKind.TAIL_MISSING, len(hashes) - 1 if hashes else None,
            f'the chain ends at seq {len(hashes)} but its anchor names seq {anchor.seq}: '
            f'{anchor.seq - len(hashes)} or more records after seq {len(hashes)} were removed')
    elif anchor.seq >= 1 and hashes[anchor.seq - 1] != anchor.hash:
        add(FindingKind.ANCHOR_MISMATCH, anchor.seq - 1,
            f'record {anchor.seq} has hash {hashes[anchor.seq - 1][:16]}... but the anchor says '
            f'{anchor.hash[:16]}... (the chain was re-sealed after a change)')
    return True


def _result(findings: list[Finding], counts: Mapping[FindingKind, int], first_bad: tuple[int, str] | None,
            count: int, key: bytes | None, keyed: bool, anchor: Anchor | None, hashes: list[str]) -> AuditResult:
    head = Anchor(len(hashes), hashes[-1]) if hashes else None
    if not findings:
        return AuditResult(True, count, mac_checked=key is not None, keyed=keyed, anchor_checked=anchor is not None,
                           head=head)
    index, record_id = first_bad if first_bad is not None else (-1, '')
    return AuditResult(False, count, None if index < 0 else index, record_id, str(findings[0]), tuple(findings),
                       key is not None, keyed, anchor is not None, head, {k.value: n for k, n in counts.items()})
