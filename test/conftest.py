"""Test-session isolation: a random DDS domain, localhost discovery, ament index of the venv."""
import os
import tempfile
import sys
from pathlib import Path

# Set before any test imports rclpy or starts a node process (children inherit the environment).
from smartcell.tools.cell_processes import random_private_domain, with_dds_profile  # noqa: E402 - before rclpy

os.environ.setdefault('ROS_DOMAIN_ID', str(random_private_domain()))   # 1-101: the range safe on Linux
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)
# The DDS profile users' cells run with (smartcell sim, ros2 launch): a killed node leaves the graph in 4 s.
os.environ.update(with_dds_profile(dict(os.environ)))
os.environ.setdefault('MPLBACKEND', 'Agg')
# Cell keys, order stores and outboxes default to ROS_HOME: each test session gets its own, so runs
# never see each other's orders (duplicates are refused across restarts by design).
os.environ['ROS_HOME'] = tempfile.mkdtemp(prefix='smartcell-test-ros-home-')

REPO = Path(__file__).resolve().parents[1]
# Shared test helpers (scan_helpers) import by name: pytest runs with --import-mode=importlib and
# test/ is no package, so nothing else puts this directory on sys.path.
sys.path.append(str(REPO / 'test'))


import pytest  # noqa: E402


@pytest.fixture(scope='session')
def repo() -> Path:
    """The source checkout (for config/ and urdf/ files under test)."""
    return REPO


def pytest_report_header() -> str:
    return f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} ROS_HOME={os.environ['ROS_HOME']}"
