"""A killed `smartcell sim` (or test) never leaves its nodes running: they die with the process that
started them (PR_SET_PDEATHSIG), even when it is killed with SIGKILL."""
import os
import signal
import subprocess
import sys
import time

import pytest

STARTER = r'''
import os, sys, time
from pathlib import Path
from smartcell.tools.cell_processes import CellProcesses
processes = CellProcesses(Path(sys.argv[1]), dict(os.environ))
processes.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'])
print(processes.processes['sleeper'].pid, flush=True)
time.sleep(120)
'''


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != 'linux', reason='PR_SET_PDEATHSIG is Linux')
def test_nodes_die_with_the_process_that_started_them(tmp_path):
    starter = subprocess.Popen([sys.executable, '-c', STARTER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               cwd=os.getcwd())
    child = int(starter.stdout.readline())
    assert alive(child)
    starter.send_signal(signal.SIGKILL)
    starter.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), 'the node outlived the killed process that started it'
