"""Signed operator requests (cell/operator_request) turned into CellController calls, free of ROS.

The wire format and the verifier are in smartcell.core.cell.authorisation. Here: the login query,
which controller call a verified request becomes, and how often a refused one is recorded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from smartcell.core.cell.authorisation import MODE_PREFIX, RequestVerifier
from smartcell.core.cell.controller import CellController, CellOutput
from smartcell.core.safety.monitor import Mode

# A refused request is an fsync'd evidence event: recorded at most this often, so a flood of bad
# requests does not become a flood of disk writes on the safety loop's thread.
REFUSAL_RECORD_PERIOD_S = 1.0
MAX_LOGIN_QUERY_CHARS = 1024
NO_USERS = 'no operator users are configured (supervisor.operator_users_file)'


def login_query(raw: str) -> str | None:
    """The user name of a {"login": name} query, else None."""
    try:
        document = json.loads(raw) if len(raw) < MAX_LOGIN_QUERY_CHARS else None
    except ValueError:
        return None
    if isinstance(document, dict) and set(document) == {'login'} and isinstance(document['login'], str):
        return document['login']
    return None


@dataclass(frozen=True)
class OperatorAnswer:
    """The answer to one operator request and what the cell must publish for it."""

    success: bool
    message: str
    output: CellOutput | None = None    # None: the cell was not involved (a login query, a throttled refusal)
    refusal_recorded: str = ''          # a refusal just recorded, for the log ('' when none)


class OperatorRequests:
    """Answers cell/operator_request: login parameters, or a verified request carried out by the cell."""

    def __init__(self, verifier: RequestVerifier | None, record_period_s: float = REFUSAL_RECORD_PERIOD_S) -> None:
        self._verifier = verifier
        self._record_period_s = record_period_s
        self._refused = 0                       # refusals since the last record
        self._recorded_steady_s = -float('inf')

    def answer(self, raw: str, cell: CellController, now_s: float, wall_ns: int, steady_s: float) -> OperatorAnswer:
        """`now_s`: the cell's clock; `wall_ns`: the wall clock the request's stamp is checked against;
        `steady_s`: a monotonic clock for the refusal records."""
        if self._verifier is None:
            return OperatorAnswer(False, NO_USERS)
        login = login_query(raw)
        if login is not None:
            return OperatorAnswer(True, json.dumps(self._verifier.login_parameters(login)))
        checked = self._verifier.verify(raw, wall_ns)
        if checked.operator is None:
            self._refused += 1
            if steady_s - self._recorded_steady_s < self._record_period_s:
                return OperatorAnswer(False, checked.reason)
            self._recorded_steady_s = steady_s
            reason = checked.reason if self._refused == 1 else \
                f'{checked.reason} (and {self._refused - 1} more refused since the last record)'
            self._refused = 0
            output = cell.operator_refused(checked.request, checked.user, reason, now_s)
            return OperatorAnswer(False, checked.reason, output, reason)
        if checked.request.startswith(MODE_PREFIX):
            output = cell.set_mode(Mode(checked.request[len(MODE_PREFIX):]), now_s, who=checked.operator)
        else:
            output = cell.request(checked.request, now_s, who=checked.operator)
        return OperatorAnswer(output.success, output.message, output)
