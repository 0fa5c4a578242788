"""Who may publish a safety input: the ROS graph checked against the one expected publisher.

Without SROS2 (the DDS in the project's wheels has no DDS-Security) any process on the domain can
publish on any topic. A safety input with a second publisher, or one from an unexpected node, is
not trusted: the consumer stops and names the stranger. On hardware SROS2 access control is the
first layer (docs/safety.md); this check is the second.
"""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class CommandPublisherCheck:
    """How far the ROS graph vouches for a command topic's publishers (arm/joint_trajectory, safety/verdict)."""
    problem: str = ''       # '' when exactly the expected node publishes, else why not
    pending: bool = False   # no publisher is named yet (start-up): only the message's signature can decide
    # The supervisor plus endpoints that cannot be told apart from it yet: more than one carrying its name
    # (most often a restart: the killed process's endpoints stay listed until its DDS participant lease
    # runs out, about 20 s), or one not named yet beside it (a restarted one's new endpoint, or a
    # stranger). Wait and hold, then judge once the graph has settled.
    ambiguous: bool = False


def check_command_publishers(topic: str, publishers: Iterable[tuple[str, str]], expected_node: str,
                             expected_namespace: str, matched: int | None = None,
                             allow_none: bool = False) -> CommandPublisherCheck:
    """Stricter than publisher_doubt, for the topics that move the arm.

    `publishers`: (node name, namespace) of every endpoint the graph lists, duplicates kept; `matched`:
    how many writers the subscription is matched with at the DDS level. DDS matches a writer, and may
    deliver its data, before the graph lists it: writers matched beyond those listed are unknown.
    Unknown or unnamed writers beside the named supervisor are strangers until named (a stray with a
    stolen key must not slip in during its first milliseconds); only when no publisher is named at all
    is it start-up discovery (`pending`), and then the signature decides. A node listed twice is a
    restarted supervisor whose old endpoint has not expired, a second process, or a stranger the graph
    attributed to it: they cannot be told apart here, so it holds (SROS2 closes this on hardware).
    """
    listed = [(name, namespace or '/') for name, namespace in publishers]
    expected = _full(expected_node, expected_namespace or '/')
    unknown = max(0, matched - len(listed)) if matched is not None else 0
    unnamed = sum(1 for name, _ in listed if name == UNNAMED_NODE) + unknown
    named = [_full(name, namespace) for name, namespace in listed if name != UNNAMED_NODE]
    strays = sorted(set(name for name in named if name != expected))
    if strays:
        return CommandPublisherCheck(f'unexpected publisher(s) of {topic}: {", ".join(strays)} '
                                     f'(only {expected} may publish)')
    if not named and not unnamed:
        return CommandPublisherCheck('' if allow_none else
                                     f'no publisher of {topic} on the ROS graph (expected {expected})')
    if not named:
        return CommandPublisherCheck(f'{unnamed} publisher(s) of {topic} not yet named on the ROS graph '
                                     f'(discovery in progress; only {expected} may publish)', pending=True)
    if len(named) > 1:
        return CommandPublisherCheck(f'{len(named)} publishers of {topic} named {expected} (exactly one may '
                                     'publish; a restarted one is listed twice until the dead process\'s '
                                     'DDS lease expires)', ambiguous=True)
    if unnamed:
        return CommandPublisherCheck(f'{unnamed} more publisher(s) of {topic} beside {expected}, not yet named '
                                     f'on the ROS graph (a stranger until named; only {expected} may publish)',
                                     ambiguous=True)
    return CommandPublisherCheck()
