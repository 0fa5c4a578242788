"""The rules the supervisor applies at its edges, tested on the ROS-free core (no DDS, no rclpy).

Velocities matched to people, lockstep pairing by stamp, the arm's speed-fraction check, verdict
stamps that never go back, journal records, replay pages, signed operator requests, the cell's files.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from smartcell.core.cell.authorisation import OperatorPolicy, RequestVerifier, load_operator_users, signed_request, \
    user_key
from smartcell.core.cell.controller import CLOCK_JUMP_S, CellController, CellEvent, JointSample
from smartcell.core.cell.files import cell_file, cell_key, unadopted_file
from smartcell.core.cell.inputs import TickPairing, people_velocities, ramp_down_refusal, speed_fraction_refusal
from smartcell.core.cell.operator_requests import OperatorRequests, login_query
from smartcell.core.cell.outputs import ReplayPages, VerdictStamps, journal_record
from smartcell.core.node_params import SUPERVISOR
from smartcell.core.params import ConfigError
from smartcell.core.safety.monitor import Mode, PeopleObservation
from smartcell.core.tasks.recipe import load_recipe

CONFIG = Path(__file__).resolve().parents[2] / 'config'
HOME = np.array([0.0, -1.571, 1.571, -1.571, -1.571, 0.0])
NOW_NS = 1_764_600_000_000_000_000
PEOPLE = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 0.0]])
VELOCITIES = np.array([[0.5, 0.0], [0.0, -1.2]])
COVARIANCES = np.stack([np.eye(2) * 0.01, np.eye(2) * 0.04])


# -- velocities belong to their people ----------------------------------------------------------------
def test_velocities_of_the_same_people_are_used():
    matched = people_velocities(PEOPLE, 'world', (PEOPLE[:, :2], VELOCITIES, COVARIANCES), 'world')
    assert not isinstance(matched, str)
    np.testing.assert_array_equal(matched[0], VELOCITIES)
    np.testing.assert_array_equal(matched[1], COVARIANCES)


@pytest.mark.parametrize('xy, frame, fragment', [
    (PEOPLE[:, :2], 'scanner_link', "in 'scanner_link'"),                 # another frame
    (PEOPLE[:1, :2], 'world', '1 people'),                                # another count
    (PEOPLE[::-1, :2], 'world', '2 people'),                              # another order
    (PEOPLE[:, :2] + 0.01, 'world', '2 people'),                          # 1 cm off: another tracker output
])
def test_velocities_of_other_people_are_refused_by_name(xy, frame, fragment):
    matched = people_velocities(PEOPLE, 'world', (xy, VELOCITIES[:len(xy)], COVARIANCES[:len(xy)]), frame)
    assert isinstance(matched, str) and fragment in matched and 'do not match' in matched


def test_an_undecodable_cloud_passes_its_reason_on():
    assert people_velocities(PEOPLE, 'world', 'humans/velocities: fields [] ...', 'world') == \
        'humans/velocities: fields [] ...'


# -- lockstep pairing ---------------------------------------------------------------------------------
@pytest.mark.parametrize('order', list(itertools.permutations(('people', 'velocities', 'joints'))))
def test_a_tick_is_judged_once_people_velocities_and_joints_of_its_stamp_are_here(order):
    pairing: TickPairing[str, str, str] = TickPairing()
    released = []
    for kind in order:
        add = {'people': pairing.add_people, 'velocities': pairing.add_velocities, 'joints': pairing.add_joints}[kind]
        released.append(add(100, f'{kind}@100'))
    assert released[:2] == [[], []]
    assert released[2] == [('people@100', 'joints@100')]
    assert pairing.velocities_at(100) == 'velocities@100'


def test_people_never_pair_with_joints_of_another_tick():
    pairing: TickPairing[str, str, str] = TickPairing()
    pairing.add_velocities(100, 'v100')
    assert pairing.add_people(100, 'p100') == []
    assert pairing.add_joints(200, 'j200') == []
    assert pairing.add_joints(100, 'j100') == [('p100', 'j100')]


def test_without_velocities_to_wait_for_people_pair_with_joints_alone():
    """A recording without humans/velocities: smartcell replay does not wait for them."""
    pairing: TickPairing[str, str, str] = TickPairing(wait_for_velocities=False)
    pairing.add_joints(100, 'j100')
    assert pairing.add_people(100, 'p100') == [('p100', 'j100')]


def test_the_buffers_are_bounded():
    pairing: TickPairing[int, int, int] = TickPairing(depth=4)
    for stamp in range(10):
        pairing.add_velocities(stamp, stamp)
    assert pairing.velocities_at(5) is None and pairing.velocities_at(6) == 6
    for stamp in range(100, 110):           # people whose velocities never come
        pairing.add_people(stamp, stamp)
    pairing.add_velocities(100, 100)
    assert pairing.add_joints(100, 100) == []         # dropped: only the newest 4 waited
    pairing.add_velocities(109, 109)
    assert pairing.add_joints(109, -109) == [(109, -109)]


# -- one speed fraction for the cell ------------------------------------------------------------------
def test_the_arms_speed_fraction_must_be_the_cells():
    assert speed_fraction_refusal(0.5, 0.5, 'arm') == ''
    mismatch = speed_fraction_refusal(0.8, 0.5, 'arm')
    assert 'is 0.8 on the arm node' in mismatch and 'but 0.5 on the supervisor' in mismatch
    assert 'does not declare' in speed_fraction_refusal(None, 0.5, 'arm')


def test_the_arm_may_not_slow_its_scale_faster_than_the_supervisor_assumes():
    assert ramp_down_refusal(4.0, 4.0, 'arm') == '' and ramp_down_refusal(2.0, 4.0, 'arm') == ''
    faster = ramp_down_refusal(8.0, 4.0, 'arm')
    assert 'is 8 1/s on the arm node' in faster and 'but 4 1/s on the supervisor' in faster
    assert 'does not declare' in ramp_down_refusal(None, 4.0, 'arm')


# -- outputs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('previous_s, stamp_s, published_s', [
    (10.0, 10.5, 10.5),                        # forward: as is
    (10.0, 9.9, 10.0),                         # a little back (watchdog then older data): held at the newest
    (10.0, 10.0 - CLOCK_JUMP_S, 10.0 - CLOCK_JUMP_S),   # a clock jump: passed on, the arm must see it
    (10.0, 0.1, 0.1),                          # a restarted twin
])
def test_verdict_stamps_never_go_back_a_little(previous_s, stamp_s, published_s):
    stamps = VerdictStamps()
    stamps.next(int(previous_s * 1e9))
    assert stamps.next(int(stamp_s * 1e9)) == int(published_s * 1e9)


def test_journal_records_carry_no_nan():
    event = CellEvent(7, 'unit_complete', 12.5, {'cycle_time_s': math.nan, 'margin_m': math.inf, 'unit': 3,
                                                 'good': True, 'order_id': ''})
    record = journal_record(event, 'cell-01', 'id-7')
    assert record == {'event_id': 'id-7', 'cell_id': 'cell-01', 'seq': 7, 'type': 'unit_complete', 'stamp': 12.5,
                      'cycle_time_s': None, 'margin_m': None, 'unit': 3, 'good': True, 'order_id': ''}
    json.dumps(record, allow_nan=False)


def test_replay_goes_on_page_by_page_until_a_short_page():
    pages = ReplayPages(page_events=100)
    assert pages.after is None
    pages.request(40)
    assert pages.after == 40
    pages.sent(100)
    assert pages.after == 140
    pages.sent(3)
    assert pages.after is None
    pages.sent(100)                         # nothing asked: nothing to continue
    assert pages.after is None


# -- operator requests --------------------------------------------------------------------------------
@pytest.mark.parametrize('raw, user', [('{"login": "alice"}', 'alice'), ('{"login": 1}', None),
                                       ('{"login": "a", "x": 1}', None), ('not json', None), ('[]', None),
                                       ('{"login": "' + 'a' * 2000 + '"}', None)])
def test_login_queries(raw, user):
    assert login_query(raw) == user


def _hash(password: str) -> str:
    salt = os.urandom(16)
    return f'pbkdf2_sha256$1000${salt.hex()}${user_key(password, salt, 1000).hex()}'


@pytest.fixture
def desk(tmp_path):
    users_file = tmp_path / 'users.yaml'
    users_file.write_text(f"alice: {{password_hash: '{_hash('alice-pw')}', role: operator}}\n")
    users = load_operator_users(users_file)
    params = {**SUPERVISOR.defaults(), 'robot_base_xyz_yaw': [0.0, 0.0, 0.75, 0.0], 'lockstep': True}
    cell = CellController.from_params(params, CONFIG / 'stopping.yaml', CONFIG / 'body_regions.yaml',
                                      CONFIG / 'motions.yaml', lambda job: load_recipe(CONFIG / f'{job}.yaml'),
                                      authorisation=OperatorPolicy())
    cell.on_cycle(PeopleObservation(0.03, 'world', np.array([[4.0, 3.0, 0.0]])),
                  JointSample(0.03, HOME.copy(), np.zeros(6)), 0.03)
    return OperatorRequests(RequestVerifier(users, b'k' * 32)), cell


def _alice(requests: OperatorRequests, cell: CellController) -> bytes:
    login = json.loads(requests.answer('{"login": "alice"}', cell, 1.0, NOW_NS, 0.0).message)
    return user_key('alice-pw', bytes.fromhex(login['salt']), login['iterations'])


def test_a_signed_request_is_carried_out_by_the_cell(desk):
    requests, cell = desk
    key = _alice(requests, cell)
    answer = requests.answer(signed_request(key, 'alice', 'mode:collaborative', NOW_NS), cell, 1.0, NOW_NS, 0.0)
    assert answer.success and cell.base_mode is Mode.COLLABORATIVE and not answer.refusal_recorded
    assert answer.output is not None and any(e.type == 'mode_change' for e in answer.output.events)
    answer = requests.answer(signed_request(key, 'alice', 'start', NOW_NS), cell, 1.1, NOW_NS, 0.1)
    assert answer.success and answer.message.startswith('idle -> ') and cell.state.name != 'IDLE'


def test_refused_requests_are_recorded_at_most_once_a_period_with_the_count(desk):
    requests, cell = desk
    forged = signed_request(b'x' * 32, 'alice', 'reset', NOW_NS)
    first = requests.answer(forged, cell, 1.0, NOW_NS, 10.0)
    assert not first.success and 'bad signature' in first.message
    assert first.refusal_recorded == first.message and first.output is not None
    assert [e.fields['accepted'] for e in first.output.events if e.type == 'operator_request'] == [False]
    for k in range(5):                      # a flood within the period: answered, not recorded
        quiet = requests.answer(forged, cell, 1.0, NOW_NS, 10.1 + 0.1 * k)
        assert not quiet.success and quiet.output is None and not quiet.refusal_recorded
    later = requests.answer(forged, cell, 2.0, NOW_NS, 11.0)
    assert later.refusal_recorded.endswith('(and 5 more refused since the last record)')


def test_without_users_every_operator_request_is_refused_by_name(desk):
    _, cell = desk
    answer = OperatorRequests(None).answer('{"login": "alice"}', cell, 1.0, NOW_NS, 0.0)
    assert not answer.success and 'operator_users_file' in answer.message and answer.output is None


# -- the cell's files ---------------------------------------------------------------------------------
def test_the_cells_files_sit_beside_its_key_named_after_it(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    assert cell_file('', 'cell-01', 'orders') == tmp_path / 'smartcell' / 'orders_cell-01.sqlite'
    assert cell_file('/data/events.sqlite', 'cell-01', 'events') == Path('/data/events.sqlite')
    key = cell_key('', 'cell-01')
    assert len(key) >= 32 and cell_key('', 'cell-01') == key and (tmp_path / 'smartcell' / 'cell-01.key').is_file()


def test_two_cells_from_one_parameter_file_in_two_namespaces_never_share_a_journal(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    folder = tmp_path / 'smartcell'
    assert cell_file('', 'cell-01', 'events', '/') == folder / 'events_cell-01.sqlite'
    assert cell_file('', 'cell-01', 'events', '/cell_a') == folder / 'events_cell-01_cell_a.sqlite'
    assert cell_file('', 'cell-01', 'orders', '/line2/cell_b') == folder / 'orders_cell-01_line2-cell_b.sqlite'
    assert cell_file('/data/events.sqlite', 'cell-01', 'events', '/cell_a') == Path('/data/events.sqlite')  # as set


@pytest.mark.parametrize('cell_id', ['', '../x', '..'])
def test_a_cell_id_that_cannot_name_a_file_is_a_configuration_error(tmp_path, monkeypatch, cell_id):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    with pytest.raises(ConfigError, match='cell_key_file'):
        cell_key('', cell_id)


def test_a_root_namespace_file_is_named_to_a_new_namespaced_cell_never_taken_over(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    folder = tmp_path / 'smartcell'
    assert unadopted_file('', 'cell-01', 'events', '/cell_a') is None        # nothing at the root
    folder.mkdir()
    (folder / 'events_cell-01.sqlite').write_bytes(b'')
    assert unadopted_file('', 'cell-01', 'events', '/cell_a') == folder / 'events_cell-01.sqlite'
    assert unadopted_file('', 'cell-01', 'events', '/') is None              # the root cell's own
    assert unadopted_file('/data/events.sqlite', 'cell-01', 'events', '/cell_a') is None   # as configured
    (folder / 'events_cell-01_cell_a.sqlite').write_bytes(b'')
    assert unadopted_file('', 'cell-01', 'events', '/cell_a') is None        # it has its own now
    assert not (folder / 'events_cell-01_cell_a.sqlite').read_bytes()       # nothing was copied into it
