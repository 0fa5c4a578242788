"""Evidence log benchmark: cost of sealing (SHA-256 chain + HMAC + anchor) per record, and verify speed.

Writes N supervisor cycle records (one event every 30 cycles, as stops and slow-downs come) to a
fresh log, unkeyed and keyed, with an fsync policy (default 'events'), then verifies the keyed log.
Prints microseconds per record written and records per second verified. The supervisor writes ~30
records/s, so the per-record cost is what it adds to each cycle.
Run: .venv/bin/python bench/bench_evidence.py [--records 100000] [--fsync events|always|never]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcell.core.safety.evidence import EvidenceWriter, verify_evidence  # noqa: E402
from smartcell.core.safety.monitor import Mode, SafetyEvent, SafetyState, SafetyVerdict  # noqa: E402

EVENT_EVERY = 30


def write(path: Path, n: int, key: bytes | None, fsync: str) -> float:
    start = time.perf_counter()
    with EvidenceWriter(path, fsync, key=key) as writer:
        for k in range(n):
            t = k / 30.0
            writer.cycle(SafetyVerdict(t, Mode.AUTOMATIC, SafetyState.REDUCED, 'warning', 1.234 + k % 7 * 0.01, 0.9,
                                       1.2, 1.6, 0.3, 0.5, 'person 0 at 1.23 m', 0, 0.33, 0.5), 0.5)
            if k % EVENT_EVERY == 0:
                writer.event(SafetyEvent(t, 'slow_down', SafetyState.REDUCED, 'warning', 'person 0 at 1.23 m', 0.5,
                                         {'separation_m': 1.23, 'sp_m': math.nan}))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=100_000)
    parser.add_argument('--fsync', default='events', choices=('events', 'always', 'never'))
    options = parser.parse_args()
    n = options.records
    total = n + n // EVENT_EVERY + 1
    with tempfile.TemporaryDirectory() as directory:
        for label, key in (('unkeyed', None), ('keyed', bytes(range(32)))):
            path = Path(directory) / f'{label}.jsonl'
            seconds = write(path, n, key, options.fsync)
            print(f'write {label:8s} fsync={options.fsync}: {total} records in {seconds:.2f} s = '
                  f'{seconds / total * 1e6:.1f} us/record '
                  f'({path.stat().st_size / total:.0f} bytes/record)')
        start = time.perf_counter()
        result = verify_evidence(Path(directory) / 'keyed.jsonl', bytes(range(32)))
        seconds = time.perf_counter() - start
        assert result.ok, result.findings
        print(f'verify keyed: {result.records} records in {seconds:.2f} s = {result.records / seconds:,.0f} records/s')


if __name__ == '__main__':
    main()
