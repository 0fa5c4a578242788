"""Who may publish a safety input: the ROS graph checked against the one expected publisher.

Without SROS2 (the DDS in the project's wheels has no DDS-Security) any process on the domain can
publish on any topic. A safety input with a second publisher, or one from an unexpected node, is
not trusted: the consumer stops and names the stranger. On hardware SROS2 access control is the
first layer (docs/safety.md); this check is the second.
"""
from __future__ import annotations

from typing import Iterable

UNNAMED_NODE = '_NODE_NAME_UNKNOWN_'      # rmw's name for an endpoint whose node is not known yet


def publisher_doubt(topic: str, publishers: Iterable[tuple[str, str]], expected_node: str,
                    expected_namespace: str) -> str:
    """'' when exactly the expected node publishes `topic`, else why not (naming the publishers).

    `publishers`: (node name, node namespace) of every publisher on the topic. An empty
    `expected_node` accepts any single publisher.
    """
    # DDS data can arrive before the graph names its writer (listed as UNNAMED_NODE for a few ms):
    # such an endpoint is judged once it is named. Refusing it would stop the cell at every start-up,
    # by discovery timing (and make lockstep runs differ); a stray is named, and caught, within ms.
    found = sorted(set((name, namespace or '/') for name, namespace in publishers if name != UNNAMED_NODE))
    expected_namespace = expected_namespace or '/'
    if not found:
        return ''       # nothing published yet: the data timeout covers silence
    names = ', '.join(_full(name, ns) for name, ns in found)
    if len(found) > 1:
        return f'{len(found)} publishers on {topic} ({names}); only {_full(expected_node, expected_namespace)} may'
    name, namespace = found[0]
    if expected_node and (name, namespace) != (expected_node, expected_namespace):
        return f'unexpected publisher {names} on {topic}; only {_full(expected_node, expected_namespace)} may'
    return ''


def _full(name: str, namespace: str) -> str:
    return f'{namespace.rstrip("/")}/{name}' if name else '(any)'
