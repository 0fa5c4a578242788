"""The operator station without ROS: logins and roles, message parsing, and the aiohttp server over real HTTP."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import urllib.error
import urllib.request

import pytest

from smartcell.hmi.auth import MAX_FAILURES, Refusal, Session, Sessions
from smartcell.hmi.server import CSP, ActionResult, HmiServer
from smartcell.hmi.view import CellView, parse_step, parse_verdict, scale_problem
from smartcell.io.opcua import OpcUaUser, check_password, hash_password

USERS = (OpcUaUser('alice', hash_password('alice-pw', iterations=1000), 'operator'),
         OpcUaUser('victor', hash_password('victor-pw', iterations=1000), 'viewer'))


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_operators_act_viewers_look_and_sessions_expire():
    clock = Clock()
    sessions = Sessions(USERS, check_password, clock, timeout_s=60.0)
    token, session = sessions.login('alice', 'alice-pw')
    assert sessions.authorize(token) == Session('alice', 'operator', 160.0)
    viewer_token, _ = sessions.login('victor', 'victor-pw')
    refused = sessions.authorize(viewer_token)
    assert isinstance(refused, Refusal) and refused.status == 403 and 'role' in refused.reason
    assert sessions.authorize('').status == 401 and sessions.authorize('forged').status == 401
    clock.now_s = 160.0
    assert sessions.authorize(token).reason == 'session expired: log in again'
    token, _ = sessions.login('alice', 'alice-pw')
    sessions.logout(token)
    assert sessions.authorize(token).status == 401


def test_wrong_passwords_lock_the_name_for_a_while():
    clock = Clock()
    sessions = Sessions(USERS, check_password, clock, timeout_s=60.0, lockout_s=30.0)
    for _ in range(MAX_FAILURES):
        assert sessions.login('alice', 'guess').status == 401
    assert sessions.login('alice', 'alice-pw').status == 429          # even the right password, for now
    assert isinstance(sessions.login('victor', 'victor-pw'), tuple)   # other names are not locked
    clock.now_s += 30.0
    assert isinstance(sessions.login('alice', 'alice-pw'), tuple)
    assert Sessions((), check_password, clock, 60.0).login('alice', 'alice-pw').status == 403


@pytest.mark.parametrize('text, fields, problem', [
    ('{"step": "assemble", "station": "assembly", "expected_end_s": NaN}',
     {'step': 'assemble', 'station': 'assembly', 'expected_end_s': 'nan'}, ''),
    ('{}', {}, ''),
    ('not json', {}, 'step message is not JSON'),
    ('[1, 2]', {}, 'step message is not a JSON object: list'),
])
def test_step_messages(text, fields, problem):
    parsed, why = parse_step(text)
    assert parsed == fields and why.startswith(problem) and bool(why) == bool(problem)


def test_verdicts_and_fractions():
    values = [('state', 'reduced_speed'), ('separation_m', '1.5'), ('protective_distance_m', 'inf'),
              ('speed_scale', '0.3'), ('reason', 'person near')]
    fields, problem = parse_verdict([('other', []), ('smartcell/safety', values)])
    assert problem == '' and fields == {'state': 'reduced_speed', 'separation_m': 1.5, 'protective_distance_m': 'inf',
                                        'speed_scale': 0.3, 'reason': 'person near'}
    assert parse_verdict([('smartcell/safety', [('speed_scale', '1')])])[1] == 'verdict has no state'
    assert parse_verdict([])[1].startswith('no smartcell/safety status')
    assert scale_problem(0.5) == '' and scale_problem(math.nan) and scale_problem(1.5)


def test_a_bad_input_keeps_the_last_good_value_and_names_the_problem():
    view = CellView('cell-1')
    view.set('speed_scale', 0.4)
    view.set('speed_scale', math.nan, 'value nan is not in [0, 1]')
    snapshot = view.snapshot()
    assert snapshot['speed_scale'] == 0.4 and snapshot['problems'] == {'speed_scale': 'value nan is not in [0, 1]'}
    view.set('speed_scale', 0.5)
    assert view.snapshot()['problems'] == {} and view.version == 3
    json.dumps(view.snapshot(), allow_nan=False)                       # what the browser's JSON.parse accepts


@pytest.fixture
def server():
    performed: list[tuple[str, str]] = []
    pending: list[concurrent.futures.Future] = []

    def perform(name: str, session: Session) -> concurrent.futures.Future:
        performed.append((name, session.user))
        future: concurrent.futures.Future = concurrent.futures.Future()
        if name == 'resume':
            pending.append(future)            # never answered: the server's timeout answers
        else:
            future.set_result(ActionResult(name != 'step_done', f'{name} by {session.user}'))
        return future

    station = HmiServer(Sessions(USERS, check_password, Clock(), 60.0), perform, action_timeout_s=0.3,
                        push_period_s=0.01)
    port = station.start('127.0.0.1', 0)
    yield station, f'http://127.0.0.1:{port}', performed
    station.stop()


def call(url: str, body: object = None, token: str = '', raw: bytes | None = None) -> tuple[int, dict, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method='POST' if data is not None else 'GET',
                                     headers={'Content-Type': 'application/json',
                                              **({'Authorization': f'Bearer {token}'} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b'{}')
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b'{}')


def test_server_serves_the_page_and_guards_every_action(server):
    station, base, performed = server
    with urllib.request.urlopen(base + '/', timeout=10) as response:
        assert b'Operator station' in response.read()
        assert response.headers['Content-Security-Policy'] == CSP
    with urllib.request.urlopen(base + '/static/hmi.js', timeout=10) as response:
        assert b'WebSocket' in response.read()
    assert call(base + '/api/action/pause', {})[0] == 401
    assert call(base + '/api/login', raw=b'not json')[0] == 400
    assert call(base + '/api/login', {'user': 'alice'})[0] == 400
    assert call(base + '/api/login', {'user': 'alice', 'password': 'nope'})[0] == 401
    status, _, viewer = call(base + '/api/login', {'user': 'victor', 'password': 'victor-pw'})
    assert status == 200 and call(base + '/api/action/pause', {}, viewer['token'])[0] == 403
    assert performed == []
    _, _, operator = call(base + '/api/login', {'user': 'alice', 'password': 'alice-pw'})
    status, _, answer = call(base + '/api/action/pause', {}, operator['token'])
    assert status == 200 and answer == {'ok': True, 'message': 'pause by alice', 'action': 'pause', 'user': 'alice'}
    status, _, answer = call(base + '/api/action/step_done', {}, operator['token'])
    assert status == 409 and answer['ok'] is False                       # the cell refused: shown, not hidden
    status, _, answer = call(base + '/api/action/resume', {}, operator['token'])
    assert status == 409 and 'no answer from the cell' in answer['message']
    assert call(base + '/api/action/self_destruct', {}, operator['token'])[0] == 404
    assert performed == [('pause', 'alice'), ('step_done', 'alice'), ('resume', 'alice')]


def test_websocket_gets_the_state_on_connect_and_every_change(server):
    import aiohttp
    station, base, _ = server
    station.publish({'cell_state': 'running', 'version': 1})

    async def watch() -> list[dict]:
        seen = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(base.replace('http', 'ws') + '/ws') as ws:
                seen.append(json.loads((await ws.receive(timeout=5)).data))
                station.publish({'cell_state': 'paused', 'version': 2})
                seen.append(json.loads((await ws.receive(timeout=5)).data))
        return seen

    first, second = asyncio.run(watch())
    assert first == {'type': 'state', 'state': {'cell_state': 'running', 'version': 1}}
    assert second['state']['cell_state'] == 'paused'
