"""`smartcell audit verify FILE`: check the MES audit trail (hash chain, MACs, anchor).

FILE is the bridge's outbox database (SQLite) or a JSON-lines export (one record per line, as
written by `smartcell audit export DB OUT`, which copies the anchor to `OUT.anchor`).

Checks: every record links to the one before (SHA-256); with `--key-file`, every record's HMAC
under the cell key (re-sealing a changed chain needs the key); the anchor `FILE.anchor` (the head
the outbox last recorded), so a deleted tail is found. An empty trail proves nothing and fails.

Exit status: 0 the chain holds; 1 tampering or nothing to verify (each finding is named: broken link,
bad hash, bad MAC, tail missing, anchor mismatch or missing, empty); 2 FILE is not an audit chain
(not SQLite and not JSON lines of chained records, or SQLite without the records table), cannot be
read, or a usage error.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Iterator, Sequence

from smartcell.core.mes.audit_trail import (AUDIT_KEY_PURPOSE, AnchorError, AuditResult, Finding, anchor_path_for,
                                           derive_key, read_anchor, verify_chain)

SQLITE_MAGIC = b'SQLite format 3\x00'
EXIT_OK, EXIT_TAMPERED, EXIT_NOT_A_CHAIN = 0, 1, 2
MAX_FINDINGS_SHOWN = 10


class NotAChain(ValueError):
    """The file is readable but is not an audit chain; the message says what it is instead."""


class KeyFileError(ValueError):
    """A key file that cannot be used."""


def read_key_file(path: Path) -> bytes:
    """The cell key from its file (never created here: a verifier that made up a key would verify nothing)."""
    from smartcell.core.safety.authority import load_or_create_cell_key
    if not path.is_file():
        raise KeyFileError(f'key file {path} not found')
    return load_or_create_cell_key(path)     # CellKeyError (a ValueError) for an unsafe or malformed file


def _jsonl_records(path: Path) -> Iterator[dict | Exception]:
    with path.open('rb') as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                yield ValueError(f'line {number}: {exc}')
                continue
            if number == 1 and isinstance(record, dict) and str(record.get('format', '')).startswith(
                    'smartcell-evidence/'):
                raise NotAChain('a safety evidence log (check it with `smartcell safety-report`)')
            yield record


def read_trail(path: Path) -> Iterator[dict | Exception]:
    """Records of a trail file, whichever of the two formats it is; NotAChain when it is neither."""
    with path.open('rb') as handle:
        magic = handle.read(len(SQLITE_MAGIC))
    if magic == SQLITE_MAGIC:
        try:
            db = sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True)
            try:
                columns = {row[1] for row in db.execute('PRAGMA table_info(records)')}
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise NotAChain(f'a damaged SQLite file ({exc})') from exc
        if not {'json', 'chained'} <= columns:
            raise NotAChain('an SQLite database without the outbox records table')
        from smartcell.io.outbox import iter_audit_records
        return iter_audit_records(path)
    return _jsonl_records(path)


def export(db: Path, out: Path) -> int:
    """The chained records of a database as JSON lines (with their MACs), and its anchor beside them."""
    from smartcell.io.outbox import iter_audit_records
    count = 0
    with out.open('w', encoding='utf-8') as handle:
        for record in iter_audit_records(db):
            if isinstance(record, Exception):
                raise ValueError(f'record {count} of {db} cannot be read: {record}')
            handle.write(json.dumps(record, sort_keys=True, separators=(',', ':'), ensure_ascii=False,
                                    allow_nan=False) + '\n')
            count += 1
    if anchor_path_for(db).is_file():
        shutil.copyfile(anchor_path_for(db), anchor_path_for(out))
    return count


def verify_file(path: Path, key: bytes | None = None, anchor_path: Path | None = None,
                use_anchor: bool = True) -> AuditResult:
    """Verify a trail file; `key` is the cell key (the audit key is derived from it). Raises NotAChain."""
    records = read_trail(path)
    anchor, problem = None, ''
    if use_anchor:
        anchor_path = anchor_path or anchor_path_for(path)
        try:
            anchor = read_anchor(anchor_path) if anchor_path.is_file() else None
        except AnchorError as exc:      # a damaged anchor is a finding, not an unreadable trail
            problem = str(exc)
        problem = problem or f'no anchor file {anchor_path}'
    audit_key = derive_key(key, AUDIT_KEY_PURPOSE) if key is not None else None
    result = verify_chain(records, audit_key, anchor, require_anchor=use_anchor, anchor_problem=problem)
    if not result.is_chain:
        raise NotAChain(result.findings[0].detail)
    return result


def findings_to_show(findings: Sequence[Finding], limit: int = MAX_FINDINGS_SHOWN) -> list[Finding]:
    """The first finding of each kind, then the others in order, up to `limit`."""
    firsts = list({f.kind: f for f in reversed(findings)}.values())[::-1]
    rest = [f for f in findings if f not in firsts]
    return sorted(firsts + rest[:max(0, limit - len(firsts))], key=findings.index)


def format_result(path: Path, result: AuditResult, use_anchor: bool) -> tuple[str, str]:
    """(stdout text, stderr text)."""
    warnings = []
    if result.keyed and not result.mac_checked:
        warnings.append('warning: the records carry MACs but no --key-file was given: a chain re-sealed '
                        'after a change would not be detected')
    if not result.keyed and not result.mac_checked:
        warnings.append('warning: the records carry no MACs (no cell key configured): only the anchor '
                        'protects against re-sealing')
    if not use_anchor:
        warnings.append('warning: --no-anchor: deletion of the newest records cannot be detected')
    head = result.head
    if result.ok and head is not None:      # an ok trail always has a head: an empty one is a finding
        return (f'audit OK: {result.checked} records, chain intact up to {head.hash[:16]}...'
                + (', MACs verified' if result.mac_checked else '')
                + (', anchor matches' if result.anchor_checked else ''), '\n'.join(warnings))
    lines = [f'audit FAILED at record {result.first_bad_index} (record_id {result.first_bad_id or "?"}): '
             f'{result.reason}' if result.first_bad_index is not None else f'audit FAILED: {result.reason}',
             f'{sum(result.finding_counts.values())} finding(s) in {path}: '
             + ', '.join(f'{kind} {count}' for kind, count in result.finding_counts.items())]
    shown = findings_to_show(result.findings)
    lines += [f'  {finding}' for finding in shown]
    if sum(result.finding_counts.values()) > len(shown):
        lines.append(f'  ... and {sum(result.finding_counts.values()) - len(shown)} more')
    return '', '\n'.join(lines + warnings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell audit', description='Check or export the MES audit trail.')
    commands = parser.add_subparsers(dest='command', required=True)
    verify_cmd = commands.add_parser('verify', help='check chain, MACs and anchor; exit 1 naming each finding')
    verify_cmd.add_argument('file', type=Path, help='outbox SQLite database or JSON-lines export')
    verify_cmd.add_argument('--key-file', type=Path, help='the cell key: check every record\'s HMAC')
    verify_cmd.add_argument('--anchor', type=Path, help='anchor file (default FILE.anchor)')
    verify_cmd.add_argument('--no-anchor', action='store_true', help='do not require an anchor (tail unchecked)')
    export_cmd = commands.add_parser('export', help='write the chained records of a database as JSON lines')
    export_cmd.add_argument('db', type=Path)
    export_cmd.add_argument('out', type=Path)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:           # argparse printed the usage error
        return int(exc.code or 0)
    name = getattr(args, 'file', None) or getattr(args, 'db', '')
    try:
        if args.command == 'export':
            print(f'exported {export(args.db, args.out)} records to {args.out}')
            return EXIT_OK
        key = read_key_file(args.key_file) if args.key_file else None
        result = verify_file(args.file, key, args.anchor, use_anchor=not args.no_anchor)
    except NotAChain as exc:
        print(f'audit: {name} is not an audit chain: {exc}', file=sys.stderr)
        return EXIT_NOT_A_CHAIN
    except (OSError, ValueError, sqlite3.DatabaseError) as exc:   # incl. KeyFileError
        print(f'audit: cannot read {name}: {exc}', file=sys.stderr)
        return EXIT_NOT_A_CHAIN
    out, err = format_result(args.file, result, not args.no_anchor)
    if out:
        print(out)
    if err:
        print(err, file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_TAMPERED


if __name__ == '__main__':
    sys.exit(main())
