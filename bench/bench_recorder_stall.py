"""Recorder stall: ticks lost when the recorder is frozen (kill -STOP) while a lockstep run goes on.

The recorder is not part of the lockstep: a recorder that falls behind gets what it missed re-sent from
the publishers' history (smartcell.interfaces.STREAM_SOURCE), and loses what has left it. One
`smartcell sim --record` run per stall, the recorder frozen once the twin runs, then every expected
stamp counted per topic in the file.

    .venv/bin/python bench/bench_recorder_stall.py [--stall 0 0.5 2] [--duration 20]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOPICS = ('/humans', '/joint_states', '/safety/verdict', '/scan', '/twin/joint_states')
TICK_HZ = 30.0


def recorder_pid(log_dir: Path) -> int | None:
    """The recorder node of this run: its command line names its overrides file in the run's directory."""
    marker = str(log_dir / 'recorder.overrides.yaml')
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / 'cmdline').read_bytes().decode(errors='replace'):
                    return int(entry.name)
            except OSError:
                continue
    return None


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out waiting for {what}')
        time.sleep(0.05)      # polling a file and /proc that another process changes


def missing_ticks(path: Path, duration_s: float) -> dict[str, int]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    stamps: dict[str, set[int]] = {}
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, _, message in reader.iter_decoded_messages(topics=list(TOPICS), log_time_order=False):
            stamps.setdefault(channel.topic, set()).add(message.header.stamp.sec * 10**9 +
                                                        message.header.stamp.nanosec)
    expected = [round(k * 1e9 / TICK_HZ) for k in range(int(duration_s * TICK_HZ))]
    return {topic: sum(e not in stamps.get(topic, set()) for e in expected) for topic in TOPICS}


def one_run(stall_s: float, duration_s: float) -> tuple[dict[str, int], int]:
    log_dir = Path(tempfile.mkdtemp(prefix='smartcell-bench-stall-')) / 'run'
    sim = subprocess.Popen([sys.executable, '-m', 'smartcell.cli', 'sim', '--record', '--no-progress',
                            '--duration', str(duration_s), '--seed', '3', '--scenario', 'shift',
                            '--without', 'sensors,mes', '--log-dir', str(log_dir)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = log_dir / 'recorder.log'
    wait_for(lambda: log.exists() and 'matched /twin/joint_states' in log.read_text(errors='replace'), 120,
             'the recorder to match the twin')
    time.sleep(1.0)                      # the twin is running
    ticks_before = ticks_now(log_dir)
    pid = recorder_pid(log_dir)
    if stall_s > 0 and pid is not None:
        os.kill(pid, signal.SIGSTOP)
        time.sleep(stall_s)
        ticks_during = ticks_now(log_dir) - ticks_before
        os.kill(pid, signal.SIGCONT)
    else:
        ticks_during = 0
    _, err = sim.communicate(timeout=600)
    if sim.returncode != 0:
        raise RuntimeError(f'smartcell sim failed ({sim.returncode}): {err[-2000:]}')
    return missing_ticks(log_dir / 'run.mcap', duration_s), ticks_during


def ticks_now(log_dir: Path) -> int:
    """Rows of the evidence log so far: one verdict per tick (a cheap clock of the lockstep run)."""
    path = log_dir / 'safety_evidence.jsonl'
    return path.read_bytes().count(b'\n') if path.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--stall', type=float, nargs='+', default=[0.0, 0.5, 2.0], help='seconds frozen, one run each')
    parser.add_argument('--duration', type=float, default=20.0, help='simulated seconds per run')
    args = parser.parse_args()
    print(f'{"stall s":>8} {"ticks run meanwhile":>20}  lost ticks per topic')
    for stall in args.stall:
        lost, during = one_run(stall, args.duration)
        print(f'{stall:8.1f} {during:20d}  ' + ', '.join(f'{t} {n}' for t, n in lost.items()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
