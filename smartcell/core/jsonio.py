"""Strict JSON out: every file and message the project writes parses with a strict reader.

Python's `json` writes bare `NaN`, `Infinity` and `-Infinity` by default; JSON (RFC 8259) has no such
tokens and strict readers (JavaScript's JSON.parse, Go, jq, most MES middleware) reject the whole
document. Here a non-finite float becomes `null`; where the value is a KPI, a `<key>_reason` beside it
says why there is no number (`cycle_time_mean_s: null`, `cycle_time_mean_s_reason: "no unit
completed"`), so a reader never has to guess whether null means zero, unknown or infinite.

numpy scalars and arrays become Python numbers and lists, enums their value, tuples lists.
`allow_nan=False` stays on as the last guard: anything missed is an error here, not a bad file there.
"""
from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any, Mapping

REASON_SUFFIX = '_reason'


def non_finite_reason(value: float) -> str:
    """A generic reason for a value that is not a number; callers pass better ones where they know them."""
    if math.isnan(value):
        return 'not measured (NaN)'
    return 'unbounded (+inf)' if value > 0 else 'unbounded (-inf)'


def to_strict(value: Any) -> Any:
    """A copy of `value` that `json.dumps(..., allow_nan=False)` accepts: non-finite floats -> None."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return to_strict(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_strict(v) for v in value]
    if hasattr(value, 'tolist'):                    # numpy arrays and scalars, without importing numpy
        return to_strict(value.tolist())
    return value


def with_reasons(values: Mapping[str, Any], reasons: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Flat KPI mapping: each non-finite float becomes None plus `<key>_reason` (given, or generic)."""
    reasons = reasons or {}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if hasattr(value, 'item') and not isinstance(value, (list, tuple, dict)):
            value = value.item()                    # numpy scalar
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
            if f'{key}{REASON_SUFFIX}' not in values:
                out[f'{key}{REASON_SUFFIX}'] = reasons.get(key) or non_finite_reason(value)
        else:
            out[key] = to_strict(value)
    return out


def strict_json_dumps(value: Any, *, reasons: Mapping[str, str] | None = None, **kwargs: Any) -> str:
    """`json.dumps` that never writes NaN/Infinity.

    With `reasons` (a mapping, possibly empty) the top level is treated as a KPI table: each
    non-finite value gets a `<key>_reason`. Without it non-finite values become plain null.
    """
    data = with_reasons(value, reasons) if reasons is not None and isinstance(value, Mapping) else value
    return json.dumps(to_strict(data), allow_nan=False, **kwargs)
