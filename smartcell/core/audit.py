"""Audit trail: production and safety records chained by SHA-256.

Each chained record carries the previous chained record's hash (`prev_hash`) and its own `hash`,
the SHA-256 of its canonical JSON (sorted keys, no spaces, `hash` left out, `prev_hash` in). Changing
any byte of a record, deleting one or reordering two breaks the chain at that record, and
`verify_chain` names the first one that does not match.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

GENESIS_HASH = '0' * 64     # prev_hash of the first record of a trail


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: every field but `hash`, sorted keys, compact separators."""
    payload = {k: v for k, v in record.items() if k != 'hash'}
    return json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def seal(record: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    """The record with `prev_hash` set and its `hash` computed."""
    sealed = dict(record)
    sealed['prev_hash'] = prev_hash
    sealed['hash'] = record_hash(sealed)
    return sealed


@dataclass(frozen=True)
class AuditResult:
    ok: bool
    checked: int                      # records checked before stopping
    first_bad_index: int | None = None  # 0-based position in the trail
    first_bad_id: str = ''            # record_id of the first bad record ('' when it could not be read)
    reason: str = ''


def verify_chain(records: Iterable[Mapping[str, Any] | Exception]) -> AuditResult:
    """Check every link; an Exception in the input stands for a record that could not be parsed."""
    expected_prev = GENESIS_HASH
    index = -1
    for index, record in enumerate(records):
        if isinstance(record, Exception):
            return AuditResult(False, index, index, '', f'record {index} cannot be read: {record}')
        record_id = str(record.get('record_id', ''))
        if record.get('prev_hash') != expected_prev:
            return AuditResult(False, index, index, record_id,
                               f'record {index} ({record_id}) has prev_hash {str(record.get("prev_hash"))[:16]}..., '
                               f'expected {expected_prev[:16]}... (a record before it was changed, removed or '
                               'reordered)')
        actual = record_hash(record)
        if record.get('hash') != actual:
            return AuditResult(False, index, index, record_id,
                               f'record {index} ({record_id}) content does not match its hash (it was changed)')
        expected_prev = actual
    return AuditResult(True, index + 1)
