"""What the operator station shows, built from the cell's messages, and the actions it offers.

Every input is untrusted: a step message that is not a JSON object, a verdict without a state, a
speed scale that is NaN becomes a named `problem` on the page (shown in red), never an exception.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from smartcell.core.safety.verdict import VERDICT_STATUS_NAME


@dataclass(frozen=True)
class Action:
    """One button: `service` is a std_srvs/Trigger of the cell; `topic` a published request."""

    name: str
    label: str
    service: str = ''
    topic: str = ''


# The operator's buttons, each through the interface every other client uses (README: Operator station).
ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action('step_done', 'Step done', service='operator/step_done'),
    Action('pause', 'Pause', service='cell/pause'),
    Action('resume', 'Resume', service='cell/resume'),
    Action('help', 'Request help', topic='operator/help_request'),
)}

# Verdict keys the page shows (smartcell.core.safety.monitor verdict fields).
VERDICT_KEYS = ('mode', 'state', 'zone', 'separation_m', 'protective_distance_m', 'speed_scale', 'reason')


def parse_step(text: str) -> tuple[dict[str, Any], str]:
    """An `operator/current_step` / `operator/next_step` payload as (fields, problem).

    `{}` is "no step" (valid). Anything else than a JSON object is a problem naming why.
    """
    try:
        value = json.loads(text)
    except (ValueError, TypeError) as exc:
        return {}, f'step message is not JSON: {exc}'
    if not isinstance(value, dict):
        return {}, f'step message is not a JSON object: {type(value).__name__}'
    return {str(k): _plain(v) for k, v in value.items()}, ''


def parse_verdict(statuses: Iterable[tuple[str, Iterable[tuple[str, str]]]]) -> tuple[dict[str, Any], str]:
    """The safety verdict (status `smartcell/safety` of a DiagnosticArray) as (fields, problem)."""
    for name, values in statuses:
        if name != VERDICT_STATUS_NAME:
            continue
        pairs = dict(values)
        fields: dict[str, Any] = {}
        for key in VERDICT_KEYS:
            raw = pairs.get(key)
            if raw is None:
                continue
            fields[key] = _number(raw) if key.endswith('_m') or key == 'speed_scale' else raw
        if 'state' not in fields:
            return fields, 'verdict has no state'
        return fields, ''
    return {}, f'no {VERDICT_STATUS_NAME} status in the verdict'


def scale_problem(value: float) -> str:
    """'' for a speed scale or fatigue index in [0, 1], else why it is not one."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        return f'value {value!r} is not in [0, 1]'
    return ''


def _number(raw: str) -> float | str:
    try:
        value = float(raw)
    except ValueError:
        return raw
    return value if math.isfinite(value) else raw        # 'inf' stays readable (nobody there)


def _plain(value: Any) -> Any:
    """JSON-safe for the page (NaN and inf become strings: browsers' JSON.parse refuses them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class CellView:
    """The latest of each input, as one JSON-able snapshot; `version` rises on every change.

    Not thread-safe by itself: the node updates it in its executor thread and hands copies
    (`snapshot()`) to the web server.
    """

    def __init__(self, cell_id: str) -> None:
        self._fields: dict[str, Any] = {'cell_id': cell_id, 'cell_state': '', 'current_step': {}, 'next_step': {},
                                        'verdict': {}, 'speed_scale': None, 'fatigue': None, 'problems': {},
                                        'last_action': {}}
        self.version = 0

    def set(self, key: str, value: Any, problem: str = '') -> None:
        problems = dict(self._fields['problems'])
        if problem:
            problems[key] = problem
        else:
            problems.pop(key, None)
            self._fields[key] = _plain(value)
        self._fields['problems'] = problems
        self.version += 1

    def snapshot(self) -> dict[str, Any]:
        return json.loads(json.dumps({**self._fields, 'version': self.version}))
