"""Where a cell keeps its files when the configuration names none, free of ROS.

The cell key (smartcell.core.safety.authority) lives at `<ROS_HOME or ~/.ros>/smartcell/<cell_id>.key`;
the cell's order store and event journal sit beside it, named after the cell, so two cells on one
computer never share one.
"""
from __future__ import annotations

from pathlib import Path

from smartcell.core.params import ConfigError
from smartcell.core.safety.authority import CellKeyError, default_cell_key_path, load_or_create_cell_key


def cell_key(key_file: str, cell_id: str) -> bytes:
    """The cell key from `key_file`, else from the cell's default path (created there on first use)."""
    try:
        return load_or_create_cell_key(key_file or default_cell_key_path(cell_id))
    except CellKeyError as exc:
        raise ConfigError(f'supervisor.cell_key_file: {exc}') from exc


def cell_file(configured: str, cell_id: str, kind: str) -> Path:
    """`configured`, else `<kind>_<cell_id>.sqlite` beside the cell's default key file."""
    return Path(configured) if configured else default_cell_key_path(cell_id).with_name(f'{kind}_{cell_id}.sqlite')
