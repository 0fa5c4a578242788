"""The cell's own SQLite files across an upgrade.

Before 0df5c50 a cell in a ROS namespace kept its event journal and order store under names without
the namespace (`events_<cell_id>.sqlite`); now they carry it (`events_<cell_id>_<namespace>.sqlite`,
smartcell.core.cell.files). A cell that started afresh there would restart its event seq at 1, and the
MES bridge, which remembers the seq it has handled, would refuse the new events as replays until the
seq caught up; the order store would forget which order ids it has seen. So the first start under the
new name continues from a copy of the old file.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path


def adopt_legacy_file(path: Path, legacy: Path) -> bool:
    """Copy `legacy` to `path` when `path` does not exist yet and `legacy` does; True when it did.

    SQLite's online backup: a consistent copy including what is still in the old file's WAL. The old
    file stays (another cell may have shared it; each continues from the same newest seq).
    """
    if path == legacy or path.exists() or not legacy.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + '.adopting')
    source = sqlite3.connect(str(legacy))
    try:
        target = sqlite3.connect(str(partial))
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    partial.replace(path)       # the new name appears only once the copy is whole
    return True
