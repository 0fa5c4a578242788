"""Files installed with the package (launch/, config/, urdf/), found through the ament index."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = 'smartcell'


class ShareFileMissing(FileNotFoundError):
    """An installed data file is missing; the message says where it was looked for and how to fix it."""


def share_dir() -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, KeyError, LookupError, ValueError, OSError) as exc:   # OSError: index unset
        raise ShareFileMissing(
            f'package {PACKAGE!r} is not in the ament index (AMENT_PREFIX_PATH='
            f'{os.environ.get("AMENT_PREFIX_PATH", "<unset>")}): install it with `make venv` '
            '(a regular `pip install .`, not -e) or source the colcon workspace') from exc


def share_file(*parts: str) -> Path:
    """Path of an installed data file, e.g. share_file('config', 'cell.yaml')."""
    path = share_dir().joinpath(*parts)
    if not path.is_file():
        raise ShareFileMissing(f'{"/".join(parts)} not found in {share_dir()}; reinstall the package (`make venv`)')
    return path
