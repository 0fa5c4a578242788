"""Operator authorisation: the policy on the ROS-free CellController, signed requests, the users file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from smartcell.core.cell.authorisation import (Operator, OperatorPolicy, RequestVerifier, load_operator_users,
                                               signed_request, user_key)
from smartcell.core.cell.controller import CellController, JointSample
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.params import ConfigError
from smartcell.core.safety.evidence import read_evidence
from smartcell.core.safety.monitor import Mode, PeopleObservation
from smartcell.core.tasks.recipe import load_recipe

CONFIG = Path(__file__).resolve().parents[2] / 'config'
HOME = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])
NOW_NS = 1_764_600_000_000_000_000
ALICE = Operator('alice', 'operator')
VIKTOR = Operator('viktor', 'viewer')


def pbkdf2_hash(password: str, iterations: int = 1000) -> str:
    """The users-file format of smartcell.io.opcua.hash_password (few iterations: fast tests)."""
    salt = os.urandom(16)
    return f'pbkdf2_sha256${iterations}${salt.hex()}${user_key(password, salt, iterations).hex()}'


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / 'users.yaml'
    path.write_text(f"alice: {{password_hash: '{pbkdf2_hash('alice-pw')}', role: operator}}\n"
                    f"viktor: {{password_hash: '{pbkdf2_hash('viktor-pw')}', role: viewer}}\n")
    return path


def controller(tmp_path, policy: OperatorPolicy | None) -> CellController:
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True,
              'evidence_log': str(tmp_path / 'evidence.jsonl')}
    cell = CellController.from_params(params, CONFIG / 'stopping.yaml', CONFIG / 'body_regions.yaml',
                                      CONFIG / 'motions.yaml', lambda job: load_recipe(CONFIG / f'{job}.yaml'),
                                      authorisation=policy)
    people = PeopleObservation(0.03, 'world', np.array([[4.0, 3.0, 0.0]]))
    cell.on_cycle(people, JointSample(0.03, HOME.copy(), np.zeros(6)), 0.03)
    return cell


def test_open_requests_need_no_login(tmp_path):
    cell = controller(tmp_path, OperatorPolicy())
    assert cell.request('start', 1.0).success
    assert cell.request('pause', 1.1).success
    assert cell.request('resume', 1.2).success
    assert cell.request('stop', 1.3).success
    assert cell.set_mode(Mode.MANUAL_REDUCED, 1.4).success
    assert cell.set_mode(Mode.AUTOMATIC, 1.5).success
    assert cell.request('emergency_stop', 1.6).success      # never behind a login


def test_emergency_stop_reset_and_restart_need_an_operator_and_are_recorded(tmp_path):
    cell = controller(tmp_path, OperatorPolicy())
    assert cell.request('start', 1.0).success
    assert cell.request('emergency_stop', 1.1).success
    refused = cell.request('reset', 1.2)
    assert not refused.success and 'authorised operator' in refused.message and 'EMERGENCY' in cell.state.name
    assert [e.fields['accepted'] for e in refused.events if e.type == 'operator_request'] == [False]
    viewer = cell.request('reset', 1.3, who=VIKTOR)
    assert not viewer.success and "role 'viewer'" in viewer.message
    granted = cell.request('reset', 1.4, who=ALICE)
    assert granted.success, granted.message
    assert cell.state.name == 'IDLE'
    assert not cell.request('start', 1.5).success          # the first start after the e-stop
    assert cell.request('start', 1.6, who=ALICE).success
    assert cell.request('stop', 1.7).success
    cell.on_cycle(PeopleObservation(1.8, 'world', np.array([[4.0, 3.0, 0.0]])),
                  JointSample(1.8, HOME.copy(), np.zeros(6)), 1.8)
    assert cell.request('start', 1.9).success               # later starts are open again
    cell.close()
    records = [e for e in read_evidence(tmp_path / 'evidence.jsonl').events() if e['event'] == 'operator_request']
    assert [(r['details']['request'], r['details']['user'], r['details']['accepted']) for r in records] == [
        ('reset', 'service', False), ('reset', 'viktor', False), ('reset', 'alice', True),
        ('start', 'service', False), ('start', 'alice', True)]


def test_collaborative_mode_needs_an_operator(tmp_path):
    cell = controller(tmp_path, OperatorPolicy())
    refused = cell.set_mode(Mode.COLLABORATIVE, 1.0)
    assert not refused.success and cell.base_mode is Mode.AUTOMATIC
    granted = cell.set_mode(Mode.COLLABORATIVE, 1.1, who=ALICE)
    assert granted.success and cell.base_mode is Mode.COLLABORATIVE
    assert any(e.type == 'mode_change' for e in granted.events)
    assert any(e.type == 'operator_request' and e.fields['user'] == 'alice' for e in granted.events)


def test_no_users_configured_names_the_parameter(tmp_path):
    cell = controller(tmp_path, OperatorPolicy(users_configured=False))
    assert 'operator_users_file' in cell.set_mode(Mode.COLLABORATIVE, 1.0).message


def test_without_a_policy_everything_stays_open(tmp_path):
    """In-process composition (the campaign) has no remote callers."""
    cell = controller(tmp_path, None)
    assert cell.request('emergency_stop', 1.0).success and cell.request('reset', 1.1).success
    assert cell.set_mode(Mode.COLLABORATIVE, 1.2).success


def test_signed_requests_verify_once_and_fresh(users_file):
    users = load_operator_users(users_file)
    verifier = RequestVerifier(users, secret=b'k' * 32)
    login = verifier.login_parameters('alice')
    key = user_key('alice-pw', bytes.fromhex(login['salt']), login['iterations'])
    raw = signed_request(key, 'alice', 'reset', NOW_NS)
    first = verifier.verify(raw, NOW_NS + 10**8)
    assert first.operator == Operator('alice', 'operator') and first.request == 'reset' and not first.reason
    assert 'replayed' in verifier.verify(raw, NOW_NS + 2 * 10**8).reason
    assert 'stale' in verifier.verify(signed_request(key, 'alice', 'reset', NOW_NS), NOW_NS + 60 * 10**9).reason
    wrong = user_key('guess', bytes.fromhex(login['salt']), login['iterations'])
    assert 'bad signature' in verifier.verify(signed_request(wrong, 'alice', 'reset', NOW_NS), NOW_NS).reason
    forged = json.loads(signed_request(key, 'alice', 'reset', NOW_NS))
    forged['request'] = 'mode:collaborative'
    assert 'bad signature' in verifier.verify(json.dumps(forged), NOW_NS).reason
    assert 'bad signature' in verifier.verify(signed_request(key, 'mallory', 'reset', NOW_NS), NOW_NS).reason
    # Unknown names get stable made-up login parameters (no user enumeration).
    assert verifier.login_parameters('mallory') == verifier.login_parameters('mallory')
    assert verifier.login_parameters('mallory')['salt'] != login['salt']


@pytest.mark.parametrize('raw', ['', 'null', '[]', '{"user": 1}', 'x' * 10000, '{"user": "a", "request": "reset", '
                                 '"stamp_ns": NaN, "nonce": "n", "mac": "m"}',
                                 '{"user": "a", "request": "reset", "stamp_ns": 1.5, "nonce": "n", "mac": "m"}',
                                 '{"user": "a", "request": "launch", "stamp_ns": 1, "nonce": "n", "mac": "m"}'])
def test_malformed_requests_are_refused_with_a_reason(users_file, raw):
    result = RequestVerifier(load_operator_users(users_file), secret=b'k' * 32).verify(raw, NOW_NS)
    assert result.operator is None and result.reason


def test_the_mes_hash_format_is_read(users_file, tmp_path):
    from smartcell.io.opcua import hash_password
    path = tmp_path / 'mes_users.yaml'
    path.write_text(f"ops: {{password_hash: '{hash_password('pw', iterations=1000)}', role: operator}}\n")
    user = load_operator_users(path)['ops']
    assert user_key('pw', user.salt, user.iterations) == user.key


@pytest.mark.parametrize('text, key', [('alice: {role: operator}\n', 'alice'),
                                       ("alice: {password_hash: 'md5$x', role: operator}\n", 'alice.password_hash'),
                                       ("alice: {password_hash: 'x', role: admin}\n", 'alice.role'),
                                       ('- a\n', 'must map')])
def test_bad_users_files_name_the_entry(tmp_path, text, key):
    path = tmp_path / 'users.yaml'
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)) as info:
        load_operator_users(path)
    assert key in str(info.value)


def test_binary_users_file_is_a_clean_error(tmp_path):
    path = tmp_path / 'users.yaml'
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match='unreadable'):
        load_operator_users(path)
