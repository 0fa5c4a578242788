"""The core stays free of rclpy and pybullet (STYLE.md §1)."""
import subprocess
import sys

CHECK = r'''
import importlib, pkgutil, sys
import smartcell.core as core
for info in pkgutil.walk_packages(core.__path__, 'smartcell.core.'):
    importlib.import_module(info.name)
import smartcell.topology
leaks = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'pybullet', 'pybullet_data'))
print(','.join(leaks))
'''


def test_core_imports_neither_rclpy_nor_pybullet():
    out = subprocess.run([sys.executable, '-c', CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '', f'core pulled in: {out.stdout.strip()}'
