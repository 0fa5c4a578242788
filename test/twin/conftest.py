"""Fixtures of the twin tests: a headless PyBullet client per test, the checkout's URDF."""
from pathlib import Path

import pytest

pytest.importorskip('pybullet')

from smartcell.twin.world import connect, disconnect  # noqa: E402

pytestmark = pytest.mark.twin


@pytest.fixture
def client():
    client_id = connect(gui=False)
    yield client_id
    disconnect(client_id)


@pytest.fixture
def urdf_path(repo: Path) -> Path:
    """The URDF under test is the checkout's, not an installed copy that may be older."""
    return repo / 'urdf' / 'ur5e.urdf'
