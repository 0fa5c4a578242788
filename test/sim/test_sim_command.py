"""`smartcell sim` end to end: the real node processes, the PyBullet twin, lockstep, KPIs."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip('pybullet')
pytest.importorskip('rclpy')
pytestmark = [pytest.mark.ros, pytest.mark.twin, pytest.mark.slow]

VARYING = {'wall_time_s', 'real_time_factor'}


def sim(tmp_path, name: str, *args: str, progress: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'smartcell.cli', 'sim', *([] if progress else ['--no-progress']),
                           '--log-dir', str(tmp_path / name), *args], capture_output=True, text=True, timeout=600)


def kpis(tmp_path, name: str) -> dict[str, float]:
    return json.loads((tmp_path / name / 'kpis.json').read_text())


def test_same_seed_same_kpis_and_faster_than_real_time(tmp_path):
    runs = [sim(tmp_path, f'run{i}', '--duration', '20', '--seed', '5', '--scenario', 'intrusion',
                '--without', 'sensors,mes') for i in (1, 2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
        assert 'real-time factor' in run.stdout and 'protective stops' in run.stdout
    first, second = kpis(tmp_path, 'run1'), kpis(tmp_path, 'run2')
    assert {k: v for k, v in first.items() if k not in VARYING} == \
        {k: v for k, v in second.items() if k not in VARYING}
    assert first['sim_time_s'] == pytest.approx(20.0)
    assert first['cycles'] >= 1                      # the arm worked
    assert first['real_time_factor'] > 1.0           # faster than real time even on a loaded CI machine
    assert (tmp_path / 'run1' / 'supervisor.log').exists()


def test_the_progress_bar_counts_what_the_shift_produced(tmp_path):
    run = sim(tmp_path, 'bar', '--duration', '15', '--scenario', 'empty', '--without', 'sensors,mes', progress=True)
    assert run.returncode == 0, run.stderr[-3000:]
    produced = kpis(tmp_path, 'bar')['cycles']
    assert produced >= 1
    shown = [int(n) for n in re.findall(r'cycles done (\d+)', run.stderr)]
    assert shown and 1 <= max(shown) <= produced, run.stderr[-2000:]
    assert '15/15 sim s' in run.stderr


def test_full_node_set_runs(tmp_path):
    run = sim(tmp_path, 'full', '--duration', '5', '--seed', '1')
    assert run.returncode == 0, run.stderr[-3000:]
    assert {p.stem for p in (tmp_path / 'full').glob('*.log')} >= {
        'twin', 'scanner', 'arm', 'supervisor', 'vibration_sensor', 'energy_meter', 'wearable', 'mes_bridge'}


@pytest.mark.parametrize('args,fragment', [
    (['--scenario', 'picnic'], "unknown scenario 'picnic'; accepted:"),
    (['--duration', '0'], '--duration must be > 0'),
    (['--without', 'arm'], "unknown group(s) in --without: ['arm']"),
    (['--job', 'nosuchjob'], "unknown job 'nosuchjob'; known jobs: job_demo, job_gearbox, job_kitting"),
    (['-p', 'supervisor.warning_distanse_m:=1.0'], "node 'supervisor' has no parameter 'warning_distanse_m'"),
    (['-p', 'mes_bridge.mqtt_port:=http'], "override 'mes_bridge.mqtt_port:=http'"),
    (['-p', 'twin.seed:=4'], 'smartcell sim sets it: use --seed'),
    (['--units', '5'], '--units needs --job'),
    (['--job', 'job_demo', '--units', '-1'], '--units must be in [0, 100000]'),
    (['--job', 'job_demo', '-p', 'supervisor.units:=4'], 'smartcell sim sets it: use --units'),
    (['-p', 'warning_distance_m:=1.0'], 'must read NODE.NAME:=VALUE'),
])
def test_bad_options_are_refused_before_anything_starts(tmp_path, args, fragment):
    run = sim(tmp_path, 'bad', *args)
    assert run.returncode == 2
    assert fragment in run.stderr
    assert not (tmp_path / 'bad').exists()


def test_bad_config_is_refused_before_any_node_starts(tmp_path, repo):
    config = tmp_path / 'cell.yaml'
    config.write_text((repo / 'config' / 'cell.yaml').read_text().replace(
        'warning_distance_m: 2.5', 'warning_distance_m: 2.5\n    warning_distanse_m: 1.0'))
    run = sim(tmp_path, 'badcfg', '--duration', '5', '--config', str(config))
    assert run.returncode == 2
    assert "unknown parameter 'warning_distanse_m' for node 'supervisor'" in run.stderr
    assert not list((tmp_path / 'badcfg').glob('*.log'))


def test_a_taken_opcua_port_is_refused_before_any_node_starts(tmp_path):
    import socket
    with socket.socket() as stranger:
        stranger.bind(('127.0.0.1', 0))
        stranger.listen(1)
        port = stranger.getsockname()[1]
        run = sim(tmp_path, 'taken', '--duration', '5', '--without', 'sensors',
                  '-p', f'mes_bridge.opcua_endpoint:=opc.tcp://127.0.0.1:{port}/smartcell/')
    assert run.returncode == 2, run.stderr[-2000:]
    assert f'OPC UA port {port} on 127.0.0.1 is not available' in run.stderr
    assert 'mes_bridge.opcua_endpoint' in run.stderr
    assert not list((tmp_path / 'taken').glob('*.log'))


def test_a_node_that_dies_fails_even_a_short_run(tmp_path):
    """The bridge exits at start-up (its orders file is missing) while a 2 s run may already be over."""
    run = sim(tmp_path, 'dies', '--duration', '2', '--without', 'sensors',
              '-p', f'mes_bridge.orders_file:={tmp_path / "no-such-orders.yaml"}')
    assert run.returncode == 1, (run.stdout[-1000:], run.stderr[-2000:])
    assert "node 'mes_bridge' exited with code 2" in run.stderr
    assert 'no-such-orders.yaml' in run.stderr            # the node's own last log lines
    assert not (tmp_path / 'dies' / 'kpis.json').exists()
