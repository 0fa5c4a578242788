"""Two simulated cells with MES side by side while a stranger holds the standard ports 4840 and 1883."""
from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from contextlib import ExitStack

import pytest

pytest.importorskip('pybullet')
pytest.importorskip('rclpy')
pytestmark = [pytest.mark.ros, pytest.mark.twin, pytest.mark.slow]

STANDARD_PORTS = (4840, 1883)     # OPC UA, MQTT


def hold(port: int) -> socket.socket | None:
    """Listen on 127.0.0.1:port as a stranger would, if the port is free (else someone already holds it)."""
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', port))
    except OSError:
        sock.close()
        return None
    sock.listen(1)
    return sock


def records_in(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute('SELECT COUNT(*) FROM records').fetchone()[0]


def test_two_cells_with_mes_side_by_side_while_strangers_hold_4840_and_1883(tmp_path):
    with ExitStack() as stack:
        for port in STANDARD_PORTS:
            sock = hold(port)
            if sock is not None:
                stack.callback(sock.close)
        for port in STANDARD_PORTS:       # held by us or by someone else: taken either way
            with socket.socket() as probe:
                with pytest.raises(OSError):
                    probe.bind(('127.0.0.1', port))
        runs = {name: subprocess.Popen(
            [sys.executable, '-m', 'smartcell.cli', 'sim', '--no-progress', '--duration', '8', '--seed', '3',
             '--without', 'sensors', '--log-dir', str(tmp_path / name)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ('cell_a', 'cell_b')}
        outputs = {name: run.communicate(timeout=600) for name, run in runs.items()}
    for name, run in runs.items():
        assert run.returncode == 0, (name, outputs[name][1][-3000:])
    endpoints = set()
    for name in runs:
        outbox = tmp_path / name / 'mes_outbox.sqlite'
        assert outbox.is_file(), name
        assert records_in(outbox) > 0, name
        log = (tmp_path / name / 'mes_bridge.log').read_text()
        line = next(li for li in log.splitlines() if 'mes_bridge up:' in li)
        assert str(outbox) in line and 'MQTT' in line
        endpoints.add(line.split('OPC UA ')[-1].strip())
    assert len(endpoints) == 2 and not any(':4840/' in e for e in endpoints), endpoints
