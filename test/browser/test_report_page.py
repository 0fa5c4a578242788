"""`smartcell sim` ends with report.html beside kpis.json; Chromium renders it from disk, fetching nothing."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_helpers import REPO, save_screenshot, wait_until  # noqa: E402

pytest.importorskip('pybullet')


@pytest.fixture(scope='module')
def sim_run(tmp_path_factory) -> tuple[Path, str]:
    """A short shared-job run with the operator station: (run directory, what the command printed).
    75 simulated s: job_demo's first unit ends at ~42 s (the energy-per-part figure needs one)."""
    run_dir = tmp_path_factory.mktemp('report') / 'run'
    done = subprocess.run([sys.executable, '-m', 'smartcell.cli', 'sim', '--duration', '75', '--job', 'job_demo',
                           '--no-progress', '--hmi', '--log-dir', str(run_dir)], cwd=REPO, env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return run_dir, done.stdout


def test_sim_prints_the_station_url_and_writes_the_report(sim_run):
    run_dir, printed = sim_run
    assert re.search(r'operator station: http://127\.0\.0\.1:\d+/', printed)
    assert f'shift report: {run_dir / "report.html"}' in printed
    assert json.loads((run_dir / 'kpis.json').read_text())['sim_time_s'] >= 75.0
    # the hmi node ran and logged the same URL it was given
    url = re.search(r'operator station: (\S+)', printed).group(1)
    assert f'operator station at {url}' in (run_dir / 'hmi.log').read_text()


def test_report_renders_offline_in_chromium(browser, sim_run, tmp_path):
    run_dir, _ = sim_run
    browser.get((run_dir / 'report.html').resolve().as_uri())
    wait_until(lambda: browser.find_element('tag name', 'h1').text.startswith('Shift report'), 10.0, 'the report')
    headings = [h.text for h in browser.find_elements('tag name', 'h2')]
    assert headings[:6] == ['KPIs', 'Separation and speed', 'Stops and their causes', 'OEE and its losses',
                            'Energy per part', 'Vibration health']
    figures = browser.find_elements('tag name', 'svg')
    assert len(figures) >= 3                                 # separation+speed, OEE waterfall, energy per part
    assert all(f.size['width'] > 300 and f.size['height'] > 100 for f in figures)   # drawn, not collapsed
    # everything is inline: the browser fetched no other resource
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert 'units completed' in browser.find_element('id', 'kpis').find_element('xpath', '..').text
    save_screenshot(browser, tmp_path, 'report.png')
