"""Full message definitions as rosbag2 stores them in an MCAP schema (`ros2msg` encoding).

rosbag2's MCAP storage plugin writes the type's .msg text followed by every dependency, depth
first in sorted order, each once, after a line of 80 '=' and `MSG: pkg/Type`. Readers
(mcap-ros2-support, rosbags, Foxglove) parse this text to decode the CDR bytes, so it is built the
same way here from the .msg files of the installed interface packages.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable

SEPARATOR = '=' * 80 + '\n'
PRIMITIVES = frozenset({'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
                        'int32', 'uint32', 'int64', 'uint64', 'string'})
# The field type at the start of a line ("foo_msgs/Bar" in "foo_msgs/Bar[] bar"), as rosbag2 matches it.
_FIELD_TYPE = re.compile(r'(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+')
_TYPE_NAME = re.compile(r'^([a-zA-Z][a-zA-Z0-9_]*)/(?:msg/)?([a-zA-Z][a-zA-Z0-9_]*)$')


class DefinitionNotFound(LookupError):
    """No .msg file for a type in the searched share directories."""


def split_type(type_name: str) -> tuple[str, str]:
    """'pkg/msg/Type' or 'pkg/Type' -> ('pkg', 'Type'); ValueError for anything else."""
    match = _TYPE_NAME.match(type_name)
    if match is None:
        raise ValueError(f'not a message type name: {type_name!r} (expected pkg/msg/Type)')
    return match.group(1), match.group(2)


def dependencies(text: str, package: str) -> list[str]:
    """The non-primitive field types a .msg text names, as 'pkg/Type', sorted (rosbag2's std::set order)."""
    found = set()
    for name in _FIELD_TYPE.findall(text):
        if name in PRIMITIVES:
            continue
        found.add(name if '/' in name else f'{package}/{name}')
    return sorted(found)


def full_text(type_name: str, read_msg: Callable[[str, str], str]) -> str:
    """The schema text of `type_name` with its dependencies; read_msg(package, type) returns a .msg text."""
    seen: set[str] = set()

    def append(name: str, depth: int) -> str:
        if depth <= 0:
            raise ValueError(f'message definition of {type_name} nests too deep')
        package, short = split_type(name)
        text = read_msg(package, short)
        for dependency in dependencies(text, package):
            if dependency not in seen:
                seen.add(dependency)
                text += '\n' + SEPARATOR + f'MSG: {dependency}\n' + append(dependency, depth - 1)
        return text

    return append(type_name, 50)


def msg_reader(share_dirs: Iterable[Path]) -> Callable[[str, str], str]:
    """read_msg for full_text: <share>/<pkg>/msg/<Type>.msg in the first directory that has it."""
    roots = [Path(d) for d in share_dirs]

    def read_msg(package: str, short: str) -> str:
        for root in roots:
            path = root / package / 'msg' / f'{short}.msg'
            if path.is_file():
                return path.read_text()
        raise DefinitionNotFound(f'no {package}/msg/{short}.msg under {", ".join(map(str, roots))}')

    return read_msg
