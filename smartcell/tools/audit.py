"""`smartcell audit verify FILE`: check the SHA-256 chain of an audit trail.

FILE is the bridge's outbox database (SQLite) or a JSON-lines export (one record per line, as
written by `smartcell audit export DB OUT`). Exit 0 when the chain holds, 1 when it is broken (the
first bad record is named), 2 for a usage error or an unreadable file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator, Sequence

from smartcell.core.audit import verify_chain

SQLITE_MAGIC = b'SQLite format 3\x00'


def _jsonl_records(path: Path) -> Iterator[dict | Exception]:
    with path.open('rb') as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                yield ValueError(f'line {number}: {exc}')


def read_trail(path: Path) -> Iterator[dict | Exception]:
    """Records of a trail file, whichever of the two formats it is."""
    with path.open('rb') as handle:
        magic = handle.read(len(SQLITE_MAGIC))
    if magic == SQLITE_MAGIC:
        from smartcell.io.outbox import iter_audit_records
        return iter_audit_records(path)
    return _jsonl_records(path)


def export(db: Path, out: Path) -> int:
    from smartcell.io.outbox import iter_audit_records
    count = 0
    with out.open('w', encoding='utf-8') as handle:
        for record in iter_audit_records(db):
            if isinstance(record, Exception):
                raise ValueError(f'record {count} of {db} cannot be read: {record}')
            handle.write(json.dumps(record, sort_keys=True, separators=(',', ':'), ensure_ascii=False) + '\n')
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='smartcell audit', description='Check or export the MES audit trail.')
    commands = parser.add_subparsers(dest='command', required=True)
    verify_cmd = commands.add_parser('verify', help='check the hash chain; exit 1 naming the first bad record')
    verify_cmd.add_argument('file', type=Path, help='outbox SQLite database or JSON-lines export')
    export_cmd = commands.add_parser('export', help='write the chained records of a database as JSON lines')
    export_cmd.add_argument('db', type=Path)
    export_cmd.add_argument('out', type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == 'export':
            print(f'exported {export(args.db, args.out)} records to {args.out}')
            return 0
        result = verify_chain(read_trail(args.file))
    except (OSError, ValueError) as exc:   # sqlite3.DatabaseError is not an OSError: caught below
        print(f'audit: cannot read {getattr(args, "file", getattr(args, "db", ""))}: {exc}', file=sys.stderr)
        return 2
    except Exception as exc:  # sqlite3.DatabaseError (corrupt database file) and the like: report, exit 2
        print(f'audit: cannot read {args.file}: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 2
    if result.ok:
        print(f'audit OK: {result.checked} records, chain intact')
        return 0
    print(f'audit FAILED at record {result.first_bad_index} (record_id {result.first_bad_id or "?"}): '
          f'{result.reason}', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
