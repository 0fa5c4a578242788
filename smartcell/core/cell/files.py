"""Where a cell keeps its files when the configuration names none, free of ROS.

The cell key (smartcell.core.safety.authority) lives at `<ROS_HOME or ~/.ros>/smartcell/<cell_id>.key`;
the cell's order store and event journal sit beside it, named after the cell and its ROS namespace,
so two cells on one computer never share one, also when both start from one parameter file (one
cell_id) under /cell_a and /cell_b.
"""
from __future__ import annotations

from pathlib import Path

from smartcell.core.mes.params import namespace_slug
from smartcell.core.params import ConfigError
from smartcell.core.safety.authority import CellKeyError, default_cell_key_path, load_or_create_cell_key


def cell_key(key_file: str, cell_id: str) -> bytes:
    """The cell key from `key_file`, else from the cell's default path (created there on first use)."""
    try:
        return load_or_create_cell_key(key_file or default_cell_key_path(cell_id))
    except CellKeyError as exc:
        raise ConfigError(f'supervisor.cell_key_file: {exc}') from exc


def cell_file(configured: str, cell_id: str, kind: str, namespace: str = '/') -> Path:
    """`configured`, else `<kind>_<cell_id>.sqlite` beside the cell's default key file; in a ROS namespace
    `<kind>_<cell_id>_<namespace slug>.sqlite` (/line2/cell_b -> line2-cell_b): two supervisors sharing a
    journal collided on its seq and lost events."""
    if configured:
        return Path(configured)
    slug = namespace_slug(namespace)
    return default_cell_key_path(cell_id).with_name(f'{kind}_{cell_id}{"_" + slug if slug else ""}.sqlite')


def unadopted_file(configured: str, cell_id: str, kind: str, namespace: str) -> Path | None:
    """The root-namespace default file (`<kind>_<cell_id>.sqlite`) when this namespaced cell has no file
    of its own yet and that one exists, else None. It may be this cell's from before the namespace was in
    the name (0df5c50), or another cell's that runs at the root: never copied automatically (events of
    another cell would reach this cell's MES as its own), named in a warning instead."""
    path = cell_file(configured, cell_id, kind, namespace)
    root = cell_file(configured, cell_id, kind)
    return root if path != root and not path.exists() and root.is_file() else None
