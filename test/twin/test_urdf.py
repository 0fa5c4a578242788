"""urdf/ur5e.urdf reproduces the manufacturer's DH kinematics and limits, with primitive shapes only."""
import xml.etree.ElementTree as ET

import numpy as np
import pybullet as p
import pytest

from smartcell.core.robot.kinematics import (JOINT_NAMES, LINK_CAPSULE_RADII, UR5E_LIMITS, forward_kinematics,
                                       link_capsules, points_to_capsules_distance)
from smartcell.twin.robot import UrdfMissing, load_robot, reset_joints, urdf_joint_limits

pytestmark = pytest.mark.twin

CONFIGURATIONS = [np.zeros(6), np.array([0, -np.pi / 2, 0, -np.pi / 2, 0, 0]),
                  np.array([0.0, -1.57, 1.57, -1.57, -1.57, 0.0])] + \
    [np.random.default_rng(seed).uniform(UR5E_LIMITS.lower / 2, UR5E_LIMITS.upper / 2) for seed in range(10)]


def _tool0_pose(robot) -> np.ndarray:
    state = p.getLinkState(robot.body_id, robot.link_index('tool0'), computeForwardKinematics=True,
                           physicsClientId=robot.client_id)
    pose = np.eye(4)
    pose[:3, :3] = np.array(p.getMatrixFromQuaternion(state[5])).reshape(3, 3)
    pose[:3, 3] = state[4]
    return pose


@pytest.mark.parametrize('q', CONFIGURATIONS, ids=lambda q: np.array2string(q, precision=2))
def test_pybullet_tool0_matches_dh_forward_kinematics(client, urdf_path, q):
    robot = load_robot(client, urdf_path)
    reset_joints(robot, q)
    pose, expected = _tool0_pose(robot), forward_kinematics(q)
    assert np.linalg.norm(pose[:3, 3] - expected[:3, 3]) < 1e-3          # m
    relative = pose[:3, :3].T @ expected[:3, :3]
    angle = np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1))
    assert np.degrees(angle) < 0.1


def test_urdf_joint_limits_equal_the_kinematics_limits(client, urdf_path):
    limits = urdf_joint_limits(load_robot(client, urdf_path))
    for key in ('lower', 'upper', 'velocity', 'effort'):
        np.testing.assert_allclose(limits[key], getattr(UR5E_LIMITS, key), rtol=1e-9, err_msg=key)


def test_link_masses_are_the_published_ur5e_values(client, urdf_path):
    robot = load_robot(client, urdf_path)
    published = {'base_link_inertia': 4.0, 'shoulder_link': 3.761, 'upper_arm_link': 8.058,
                 'forearm_link': 2.846, 'wrist_1_link': 1.37, 'wrist_2_link': 1.3, 'wrist_3_link': 0.365}
    for link, mass in published.items():
        assert p.getDynamicsInfo(robot.body_id, robot.link_index(link), physicsClientId=client)[0] == \
            pytest.approx(mass)
    # Frame-only links must not add PyBullet's default 1 kg each.
    for link in ('flange', 'tool0', 'gripper_tcp'):
        assert p.getDynamicsInfo(robot.body_id, robot.link_index(link), physicsClientId=client)[0] < 1e-3


def test_frames_and_joints_are_named_as_in_ros(urdf_path):
    tree = ET.parse(urdf_path)
    links = {link.get('name') for link in tree.iter('link')}
    assert {'base_link', 'base', 'base_link_inertia', 'shoulder_link', 'upper_arm_link', 'forearm_link',
            'wrist_1_link', 'wrist_2_link', 'wrist_3_link', 'flange', 'tool0', 'gripper'} <= links
    revolute = [j.get('name') for j in tree.iter('joint') if j.get('type') == 'revolute']
    assert tuple(revolute) == JOINT_NAMES


def test_only_primitive_shapes(urdf_path):
    tree = ET.parse(urdf_path)
    assert not list(tree.iter('mesh'))
    shapes = {child.tag for geometry in tree.iter('geometry') for child in geometry}
    assert shapes <= {'box', 'cylinder', 'sphere', 'capsule'}


def test_missing_urdf_names_the_path(client, tmp_path):
    missing = tmp_path / 'nope' / 'ur5e.urdf'
    with pytest.raises(UrdfMissing, match=str(missing)):
        load_robot(client, missing)


@pytest.mark.parametrize('seed', range(4))
def test_link_capsules_enclose_the_urdf_collision_shapes(client, urdf_path, seed):
    """Probe points just outside the capsule envelope never touch the URDF's collision shapes."""
    rng = np.random.default_rng(seed)
    robot = load_robot(client, urdf_path)
    q = rng.uniform(-np.pi, np.pi, 6)
    reset_joints(robot, q)
    capsules = link_capsules(q)
    probe_radius = 0.003
    probe = p.createMultiBody(0.0, p.createCollisionShape(p.GEOM_SPHERE, radius=probe_radius, physicsClientId=client),
                              physicsClientId=client)
    checked = 0
    for _ in range(3000):
        m = rng.integers(len(capsules))
        along = capsules[m, 0] + rng.uniform(0, 1) * (capsules[m, 1] - capsules[m, 0])
        direction = rng.normal(size=3)
        point = along + direction / np.linalg.norm(direction) * (LINK_CAPSULE_RADII[m] + probe_radius + 0.002)
        if points_to_capsules_distance(point, capsules).min() < probe_radius + 0.001:
            continue                                          # inside another capsule
        p.resetBasePositionAndOrientation(probe, point.tolist(), [0, 0, 0, 1], physicsClientId=client)
        touching = p.getClosestPoints(probe, robot.body_id, 0.0, physicsClientId=client)
        assert not touching, \
            f'URDF shape of link {robot.link_names[touching[0][4]]} pokes out of capsule {m} at {point}'
        checked += 1
    assert checked > 100
