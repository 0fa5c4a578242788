"""The cell world: loading, stepping, joint control, person-robot distance and contacts."""
import math
from pathlib import Path

import numpy as np
import pybullet as p
import pytest

from smartcell.core.robot.kinematics import UR5E_LIMITS
from smartcell.twin.human import REGION_NAMES, PersonState
from smartcell.twin.robot import reset_joints
from smartcell.twin.world import DEFAULT_LAYOUT, HOME_Q_RAD, CellLayout, CellWorld, connect, disconnect

pytestmark = pytest.mark.twin

UPRIGHT_Q = np.array([0.0, -np.pi / 2, 0.0, -np.pi / 2, 0.0, 0.0])


def test_connect_is_headless_and_disconnect_is_idempotent():
    client = connect()
    assert p.getConnectionInfo(client)['connectionMethod'] == p.DIRECT
    disconnect(client)
    disconnect(client)
    assert not p.isConnected(client)


def test_world_loads_and_steps_in_whole_substeps(client, urdf_path):
    world = CellWorld(client, urdf_path=urdf_path, physics_rate_hz=240.0)
    q, qd, effort = world.joint_state()
    np.testing.assert_allclose(q, HOME_Q_RAD, atol=1e-9)
    assert qd.shape == effort.shape == (6,)
    for _ in range(90):
        world.step(1 / 30)
    assert world.sim_time == pytest.approx(3.0, abs=1e-12)
    # Holding home against gravity: the arm does not sag.
    np.testing.assert_allclose(world.joint_state()[0], HOME_Q_RAD, atol=0.01)
    with pytest.raises(ValueError, match='dt'):
        world.step(0.0)
    world.close()
    with pytest.raises(RuntimeError, match='closed'):
        world.step(0.1)


def test_joint_targets_are_reached_within_the_speed_limit(client, urdf_path):
    world = CellWorld(client, urdf_path=urdf_path)
    target = np.array([0.8, -1.2, 1.0, -1.4, -1.2, 0.6])
    world.set_joint_targets(target)
    peak_speed = np.zeros(6)
    for _ in range(120):
        world.step(1 / 30)
        peak_speed = np.maximum(peak_speed, np.abs(world.joint_state()[1]))
    np.testing.assert_allclose(world.joint_state()[0], target, atol=0.01)
    assert np.all(peak_speed <= UR5E_LIMITS.velocity * 1.05), peak_speed
    assert peak_speed.max() > 0.5             # it did move, and quickly


@pytest.mark.parametrize('q, why', [(np.full(6, np.nan), 'finite'), (np.array([0, 0, 3.5, 0, 0, 0]), 'elbow_joint'),
                                    (np.zeros(5), '6 values')])
def test_bad_joint_targets_are_refused(client, urdf_path, q, why):
    world = CellWorld(client, urdf_path=urdf_path)
    with pytest.raises(ValueError, match=why):
        world.set_joint_targets(q)


def _still(state: PersonState):
    from smartcell.twin.human import PathBuilder
    return PathBuilder((state.x_m, state.y_m), yaw_rad=state.yaw_rad).build()


def _upright_world(client, urdf_path) -> CellWorld:
    """Arm straight up; one person parked far away."""
    return CellWorld(client, urdf_path=urdf_path, initial_q_rad=tuple(UPRIGHT_Q),
                     people=[_still(PersonState(50.0, 50.0, 0.0))])


# Arm straight up, seen from -y: the upper arm is offset towards +y (along the shoulder-lift axis)
# and the wrist and gripper point to +y, so the nearest robot surface is the shoulder-pan housing,
# a vertical cylinder of radius 0.06 m (URDF) around the base axis, world z 0.825-0.975 m, which
# overlaps the torso's height (0.90-1.45 m).
SHOULDER_HOUSING_RADIUS_M = 0.06


@pytest.mark.parametrize('gap_m', [0.3, 0.6, 1.2])
def test_min_person_robot_distance_is_the_true_gap(client, urdf_path, gap_m):
    world = _upright_world(client, urdf_path)
    assert world.min_person_robot_distance(max_distance_m=5.0) == math.inf          # nobody near
    torso_half_depth = world.people[0].dims.torso_size_m[0] / 2
    # Facing the robot (+y), arms hanging: the torso front is the nearest part of the person.
    y = -(SHOULDER_HOUSING_RADIUS_M + gap_m + torso_half_depth)
    world.set_person_state(0, PersonState(0.0, y, math.pi / 2))
    assert world.min_person_robot_distance() == pytest.approx(gap_m, abs=0.02)


def test_a_forced_contact_is_attributed_to_the_right_body_region(client, urdf_path):
    world = _upright_world(client, urdf_path)
    # Facing the robot from +y with both arms reaching forward at shoulder height (1.42 m): standing
    # at x = +0.22 m puts the right arm (person's right = world -x here) through the forearm/elbow.
    world.set_person_state(0, PersonState(0.22, 0.6, -math.pi / 2, reach=1.0))
    world.step(1 / 30)
    contacts = world.person_robot_contacts()
    assert contacts, 'no contact reported'
    assert {c.region for c in contacts} == {'forearm_hand_right'}
    # Staged overlap of a still arm and a still person: no closing speed, no compression, no force.
    assert all(c.normal_force_n == 0.0 and c.closing_speed_mps == 0.0 for c in contacts)
    assert {c.robot_link for c in contacts} <= {'forearm_link', 'upper_arm_link', 'wrist_1_link'}
    assert contacts[0].iso_region.startswith('lower arm')
    assert contacts[0].body_regions == ('lower_arms_wrists', 'hands_fingers')
    assert world.min_person_robot_distance() < 0          # interpenetrating
    q = world.joint_state()[0]
    for _ in range(5):
        world.step(1 / 30)
    # A scripted person cannot yield: the rigid solver would shove the arm; the contact model does not.
    np.testing.assert_allclose(world.joint_state()[0], q, atol=1e-6)


def test_an_arm_pushing_into_a_person_meets_the_annex_a_force_then_its_rated_limit_holds_it(client, urdf_path):
    from smartcell.core.safety.pfl import transient_contact_force_N
    world = CellWorld(client, urdf_path=urdf_path, initial_q_rad=tuple(UPRIGHT_Q),
                      people=[_still(PersonState(50.0, 50.0, 0.0))])
    # Facing the upright arm from +x, arms reaching: tilting the shoulder towards +x meets the upper arm.
    world.set_person_state(0, PersonState(0.9, 0.0, math.pi, reach=1.0))
    q, rate = np.array(UPRIGHT_Q, dtype=float), 0.3
    first = None
    for _ in range(120):
        q[1] += rate / 30
        world.set_joint_targets(q, np.array([0.0, rate, 0.0, 0.0, 0.0, 0.0]))
        world.step(1 / 30)
        if world.person_robot_contacts():
            first = world.person_robot_contacts()[0]
            break
    assert first is not None, 'the arm never reached the person'
    model = world.contact_model
    region = model.body.most_restrictive(first.body_regions)
    transient = transient_contact_force_N(region, first.closing_speed_mps, model.robot_moving_mass_kg, model.payload_kg)
    assert 0.1 < first.closing_speed_mps < 0.5            # the wrist's speed at 0.3 rad/s about the shoulder
    assert transient <= first.normal_force_n <= model.rated_force_limit_N
    for _ in range(10):                                   # it keeps pushing: the robot's own limit stops it
        q[1] += rate / 30
        world.set_joint_targets(q, np.array([0.0, rate, 0.0, 0.0, 0.0, 0.0]))
        world.step(1 / 30)
    assert world.rated_force_stop
    assert max(c.normal_force_n for c in world.person_robot_contacts()) == pytest.approx(model.rated_force_limit_N)
    held = world.joint_state()[0]
    world.step(1 / 30)
    np.testing.assert_allclose(world.joint_state()[0], held, atol=1e-3)
    assert abs(world.joint_state()[1][1]) < 0.01          # held, while the command goes on
    world.set_person_state(0, PersonState(3.0, 0.0, math.pi))     # the person steps back
    world.step(1 / 30)
    world.step(1 / 30)
    assert world.person_robot_contacts() == []
    # Still held: the command went on meanwhile, and a resume to it would be a lunge.
    assert world.rated_force_stop
    np.testing.assert_allclose(world.joint_state()[0], held, atol=1e-3)
    world.set_joint_targets(held)                         # the arm's controller starts again from there
    world.step(1 / 30)
    assert not world.rated_force_stop
    q = held.copy()
    for _ in range(5):
        q[1] += rate / 30
        world.set_joint_targets(q, np.array([0.0, rate, 0.0, 0.0, 0.0, 0.0]))
        world.step(1 / 30)
    assert world.joint_state()[0][1] > held[1] + 0.02     # following the command again
    assert first.robot_force_n <= first.normal_force_n    # the robot's share of a touch is never more


def test_no_contacts_when_apart(client, urdf_path):
    world = _upright_world(client, urdf_path)
    world.set_person_state(0, PersonState(0.22, 1.5, -math.pi / 2, reach=1.0))
    world.step(1 / 30)
    assert world.person_robot_contacts() == []


def test_people_follow_their_paths_deterministically(client, urdf_path):
    from smartcell.twin.scenarios import scenario_paths
    paths = scenario_paths('intrusion', seed=4, duration_s=30.0)
    world = CellWorld(client, urdf_path=urdf_path, people=paths)
    for _ in range(150):
        world.step(1 / 30)
    expected = paths[0].state_at(world.sim_time)
    head = world.people[0].body_ids[REGION_NAMES.index('head')]
    position, _ = p.getBasePositionAndOrientation(head, physicsClientId=client)
    assert position[:2] == pytest.approx((expected.x_m, expected.y_m), abs=1e-6)


def test_layout_requires_the_named_stations():
    with pytest.raises(ValueError, match='assembly'):
        CellLayout(DEFAULT_LAYOUT.floor_size_m, DEFAULT_LAYOUT.table, DEFAULT_LAYOUT.robot_base_position_m, 0.0,
                   tuple(s for s in DEFAULT_LAYOUT.stations if s.name != 'assembly'), DEFAULT_LAYOUT.fence,
                   DEFAULT_LAYOUT.scanner)
    assert DEFAULT_LAYOUT.station('assembly').shared
    with pytest.raises(KeyError, match='operator_bench'):
        DEFAULT_LAYOUT.station('nowhere')


def test_robot_is_not_blocked_by_the_table_it_stands_on(client, urdf_path):
    world = CellWorld(client, urdf_path=urdf_path)
    reset_joints(world.robot, np.array([0.0, -0.3, 1.2, -1.5, -1.57, 0.0]))   # tool down near the table top
    world.set_joint_targets(np.array([0.0, -0.3, 1.2, -1.5, -1.57, 0.0]))
    world.step(0.5)
    assert p.getContactPoints(bodyA=world.robot.body_id, physicsClientId=client) == ()


def test_pruned_distance_query_equals_brute_force(client, urdf_path):
    """The lower-bound pruning in min_person_robot_distance never changes the answer."""
    from smartcell.twin.scenarios import scenario_paths
    world = CellWorld(client, urdf_path=urdf_path, people=scenario_paths('intrusion', seed=3, duration_s=60.0))
    rng = np.random.default_rng(0)
    bodies = [b for person in world.people for b in person.body_ids]
    compared_close = 0
    for tick in range(60 * 30):
        if tick % 30 == 0:
            world.set_joint_targets(rng.uniform([-1, -2.0, -2.0, -2.5, -2.5, -3], [1, -0.8, 2.0, -0.5, 0.5, 3]))
        world.step(1 / 30)
        if tick % 10:
            continue
        brute = min((pt[8] for b in bodies
                     for pt in p.getClosestPoints(b, world.robot.body_id, 20.0, physicsClientId=client)),
                    default=math.inf)
        assert world.min_person_robot_distance() == pytest.approx(brute, abs=1e-9)
        compared_close += brute < 0.5
    assert compared_close > 3


def test_demo_arm_targets_hold_the_tool_down_above_pick_and_place():
    from smartcell.core.robot.kinematics import forward_kinematics
    from smartcell.twin.demo import APPROACH_HEIGHT_M, station_joint_targets
    base = np.array(DEFAULT_LAYOUT.robot_base_position_m)
    for q, station in zip(station_joint_targets(DEFAULT_LAYOUT), ('pick', 'place')):
        pose = forward_kinematics(q)
        expected = np.array(DEFAULT_LAYOUT.station(station).position_m) + (0, 0, APPROACH_HEIGHT_M) - base
        np.testing.assert_allclose(pose[:3, 3], expected, atol=1e-6)
        np.testing.assert_allclose(pose[:3, 2], [0, 0, -1], atol=1e-6)


def test_demo_runs_headless(capsys):
    from smartcell.twin.demo import main
    assert main(['--scenario', 'intrusion', '--duration', '2']) == 0
    assert 'scenario intrusion, seed 1: 2.0 s simulated' in capsys.readouterr().out


def test_every_twin_body_region_has_pfl_limits():
    from smartcell.core.safety.pfl import BodyModel
    from smartcell.twin.human import BODY_MODEL_REGIONS, REGION_NAMES
    body = BodyModel.from_yaml(Path(__file__).resolve().parents[2] / 'config' / 'body_regions.yaml')
    assert set(BODY_MODEL_REGIONS) == set(REGION_NAMES)
    for names in BODY_MODEL_REGIONS.values():
        assert body.most_restrictive(names).force_N > 0


def test_a_set_point_stream_is_followed_smoothly_and_the_joint_state_reads_the_true_speed(client, urdf_path):
    # 30 Hz set-points of a steady 1.44 rad/s pan (the arm node's stream in lockstep). The servo used to
    # chase each one as a step: within every tick the speed swung 0.4-2.4 rad/s, and the joint state,
    # read at the end of the tick, said ~0.45 rad/s, a third of the truth.
    world = CellWorld(client, urdf_path=urdf_path)
    q, rate = np.array(HOME_Q_RAD, dtype=float), 1.44
    readings, travelled = [], []
    for _ in range(30):
        q[0] += rate / 30
        before = world.joint_state()[0][0]
        world.set_joint_targets(q, np.array([rate, 0.0, 0.0, 0.0, 0.0, 0.0]))
        world.step(1 / 30)
        readings.append(world.joint_state()[1][0])
        travelled.append((world.joint_state()[0][0] - before) * 30)
    assert np.allclose(readings[5:], rate, rtol=0.03), readings
    assert np.allclose(travelled[5:], rate, rtol=0.03), travelled    # the reading is what the joint did
