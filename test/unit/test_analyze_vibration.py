"""`smartcell analyze-vibration` end to end on generated files, good and bad."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from smartcell.core.sensors.vibration import bearing_preset, fault_frequencies
from smartcell.tools.analyze_vibration import main

FS = 12800.0
RPM = 1797.0


def _outer_race_signal(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    bpfo = fault_frequencies(bearing_preset('6205'), RPM / 60).bpfo_hz
    impulses = np.zeros(n)
    impulses[(np.arange(0, seconds, 1 / bpfo) * FS).astype(int)] = 1.0
    kt = t[:300]
    ringing = np.exp(-kt * 1000) * np.sin(2 * np.pi * 3000 * kt)
    return 2.0 * np.convolve(impulses, ringing)[:n] + 0.1 * np.sin(2 * np.pi * RPM / 60 * t) + \
        0.1 * rng.standard_normal(n)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize('kind', ['npy', 'csv', 'csv_header_columns'])
def test_outer_race_file_gives_bpfo_match_and_verdict(tmp_path, capsys, kind):
    x = _outer_race_signal()
    if kind == 'npy':
        path, extra = tmp_path / 'x.npy', []
        np.save(path, x)
    elif kind == 'csv':
        path, extra = tmp_path / 'x.csv', []
        np.savetxt(path, x, delimiter=',')
    else:
        path, extra = tmp_path / 'x.csv', ['--column', 1]
        np.savetxt(path, np.column_stack((np.arange(x.size) / FS, x)), delimiter=',', header='time_s,accel_mps2',
                   comments='')
    code, out, err = _run(capsys, path, '--sample-rate-hz', FS, '--rpm', RPM, '--bearing', '6205', *extra)
    assert code == 0, err
    result = json.loads(out)
    assert result['samples'] == x.size
    assert result['features']['rms'] == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-9)
    matched = {m['name'] for m in result['matches'] if m['matched'] and m['name'] in ('ftf', 'bsf', 'bpfo', 'bpfi')}
    assert 'bpfo' in matched
    assert result['verdict']['fault'] == 'outer_race'
    assert result['features']['fault_frequencies_hz']['bpfo_hz'] == pytest.approx(107.36, abs=0.02)


def test_geometry_options_equal_the_preset_and_plot_is_written(tmp_path, capsys):
    path = tmp_path / 'x.npy'
    np.save(path, _outer_race_signal())
    png = tmp_path / 'out.png'
    code, out, err = _run(capsys, path, '--fs', FS, '--shaft-hz', RPM / 60, '--n-balls', 9, '--ball-diameter-mm',
                          7.94, '--pitch-diameter-mm', 39.04, '--plot', png)
    assert code == 0, err
    assert json.loads(out)['verdict']['fault'] == 'outer_race'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000


def test_healthy_noise_is_healthy(tmp_path, capsys):
    path = tmp_path / 'n.npy'
    np.save(path, np.random.default_rng(1).standard_normal(int(2 * FS)))
    code, out, _ = _run(capsys, path, '--fs', FS, '--rpm', RPM, '--bearing', '6205')
    assert code == 0 and json.loads(out)['verdict']['fault'] == 'healthy'


def _bad_nan(tmp_path):
    x = np.ones(int(2 * FS))
    x[10] = np.nan
    np.save(tmp_path / 'nan.npy', x)
    return tmp_path / 'nan.npy', ['--fs', FS], 'NaN'


def _bad_shape(tmp_path):
    np.save(tmp_path / 'cube.npy', np.zeros((10, 10, 10)))
    return tmp_path / 'cube.npy', ['--fs', FS], 'wrong shape'


def _bad_columns(tmp_path):
    np.save(tmp_path / 'two.npy', np.zeros((int(2 * FS), 2)))
    return tmp_path / 'two.npy', ['--fs', FS], '--column'


def _too_short(tmp_path):
    np.save(tmp_path / 'short.npy', np.random.default_rng(0).standard_normal(1000))
    return tmp_path / 'short.npy', ['--fs', FS, '--resolution-hz', 1.0], 'too short'


def _missing_rate(tmp_path):
    np.save(tmp_path / 'ok.npy', np.zeros(int(2 * FS)))
    return tmp_path / 'ok.npy', [], 'sample-rate-hz'


def _zero_rate(tmp_path):
    np.save(tmp_path / 'ok.npy', np.zeros(int(2 * FS)))
    return tmp_path / 'ok.npy', ['--fs', 0], 'positive'


def _rate_too_low(tmp_path):
    np.save(tmp_path / 'ok.npy', np.zeros(2000))
    return tmp_path / 'ok.npy', ['--fs', 800, '--rpm', RPM, '--bearing', '6205'], 'Nyquist'   # 3 x BPFI = 487 Hz


def _unreadable(tmp_path):
    (tmp_path / 'junk.npy').write_bytes(b'not a numpy file at all')
    return tmp_path / 'junk.npy', ['--fs', FS], 'unreadable'


def _garbage_csv(tmp_path):
    (tmp_path / 'junk.csv').write_text('a,b\nx,y\n')
    return tmp_path / 'junk.csv', ['--fs', FS], 'unreadable'


def _missing_file(tmp_path):
    return tmp_path / 'nope.csv', ['--fs', FS], 'no such file'


def _bad_suffix(tmp_path):
    (tmp_path / 'x.wav').write_bytes(b'RIFF')
    return tmp_path / 'x.wav', ['--fs', FS], 'unsupported'


@pytest.mark.parametrize('make', [_bad_nan, _bad_shape, _bad_columns, _too_short, _missing_rate, _zero_rate,
                                  _rate_too_low, _unreadable, _garbage_csv, _missing_file, _bad_suffix])
def test_bad_input_exits_2_with_a_clear_error(tmp_path, capsys, make):
    path, options, words = make(tmp_path)
    code, out, err = _run(capsys, path, *options)
    assert code == 2
    assert out == ''
    assert words in err
    assert 'Traceback' not in err


def test_runs_as_a_module_command(tmp_path):
    path = tmp_path / 'x.npy'
    np.save(path, _outer_race_signal(seconds=1.0))
    done = subprocess.run([sys.executable, '-m', 'smartcell.tools.analyze_vibration', str(path), '--fs', str(FS),
                           '--rpm', str(RPM), '--bearing', '6205'], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['verdict']['fault'] == 'outer_race'
    bad = subprocess.run([sys.executable, '-m', 'smartcell.tools.analyze_vibration', str(tmp_path / 'none.npy'),
                          '--fs', '100'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'no such file' in bad.stderr


def test_without_a_speed_the_verdict_says_so_and_reports_the_condition(tmp_path, capsys):
    path = tmp_path / 'x.npy'
    np.save(path, _outer_race_signal())
    code, out, err = _run(capsys, path, '--fs', FS, '--bearing', '6205')
    assert code == 0, err
    result = json.loads(out)
    assert result['verdict']['fault'] == 'not_assessed'
    assert result['verdict']['note'] == 'unknown speed: bearing lines not assessed'
    assert result['condition']['severity'] == 'high'
    assert result['condition']['kurtosis'] > 6.0
    assert result['matches'] == []
