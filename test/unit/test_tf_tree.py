"""Frames of the cell: URDF forward kinematics against the manufacturer's DH model, quaternions,
the frame tree's walk to the world and the reasons it gives when a frame does not get there."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smartcell.core.robot.kinematics import JOINT_NAMES, forward_kinematics, link_frames
from smartcell.core.robot.tf_tree import (FrameError, FrameTree, Transform, UrdfError, matrix_to_quaternion,
                                          parse_urdf, people_transforms, quaternion_to_matrix, rpy_matrix,
                                          yaw_transform)
from smartcell.share import share_file


@pytest.fixture(scope='module')
def model():
    return parse_urdf(share_file('urdf', 'ur5e.urdf').read_text())


def test_the_urdf_tree_is_the_ur5e_with_its_gripper(model):
    assert model.root == 'base_link'
    assert model.moving_joints == JOINT_NAMES
    assert {'base', 'tool0', 'flange', 'gripper_tcp'} <= set(model.links)
    assert len(model.fixed_transforms()) == len(model.joints) - len(JOINT_NAMES)


joint_values = st.lists(st.floats(-2 * math.pi, 2 * math.pi), min_size=6, max_size=6)


@settings(max_examples=60, deadline=None)
@given(joint_values)
def test_urdf_forward_kinematics_matches_the_dh_model(model, q):
    poses = model.link_poses(dict(zip(JOINT_NAMES, q, strict=True)))
    np.testing.assert_allclose(poses['tool0'], forward_kinematics(q), atol=1e-9)
    # the vendor frame `base` is base_link turned by pi about z, whatever the joints do
    np.testing.assert_allclose(poses['base'], link_frames(q)[0], atol=1e-12)


def test_the_tcp_lies_150_mm_beyond_tool0_on_its_z(model):
    q = [0.3, -1.2, 1.4, -1.7, -1.57, 0.5]
    poses = model.link_poses(dict(zip(JOINT_NAMES, q, strict=True)))
    tool0 = forward_kinematics(q)
    np.testing.assert_allclose(poses['gripper_tcp'][:3, 3], tool0[:3, 3] + 0.15 * tool0[:3, 2], atol=1e-9)


@pytest.mark.parametrize('missing, reason', [
    ({}, "no position for joint 'shoulder_pan_joint'"),
    ({'elbow_joint': math.nan}, "joint 'elbow_joint' position is nan"),
])
def test_a_missing_or_unknown_joint_is_refused_by_name(model, missing, reason):
    positions = {name: 0.0 for name in JOINT_NAMES} if missing else {}
    positions.update(missing)
    with pytest.raises(ValueError, match=reason):
        model.moving_transforms(positions)


@settings(max_examples=200, deadline=None)
@given(st.floats(-math.pi, math.pi), st.floats(-math.pi / 2, math.pi / 2), st.floats(-math.pi, math.pi))
def test_quaternion_round_trip(roll, pitch, yaw):
    rotation = rpy_matrix(roll, pitch, yaw)
    q = matrix_to_quaternion(rotation)
    assert math.isclose(sum(c * c for c in q), 1.0, abs_tol=1e-12) and q[3] >= 0.0
    np.testing.assert_allclose(quaternion_to_matrix(q), rotation, atol=1e-9)


@pytest.mark.parametrize('yaw', [0.0, math.pi / 4, math.pi, -math.pi / 2])
def test_yaw_transform_places_a_point_like_the_layout_does(yaw):
    transform = yaw_transform('world', 'scanner_link', (0.95, 0.55, 0.17), yaw)
    point = transform.matrix() @ np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(point[:3], [0.95 + math.cos(yaw), 0.55 + math.sin(yaw), 0.17], atol=1e-12)


def test_the_tree_walks_a_frame_to_the_world_and_composes_the_poses():
    tree = FrameTree([yaw_transform('world', 'base_link', (1.0, 0.0, 0.75), math.pi / 2),
                      Transform('base_link', 'tool0', (0.5, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
                      *people_transforms('world', [(2.0, 3.0)])])
    assert tree.path('tool0', 'world') == ('tool0', 'base_link', 'world')
    np.testing.assert_allclose(tree.pose('tool0', 'world')[:3, 3], [1.0, 0.5, 0.75], atol=1e-12)
    np.testing.assert_allclose(tree.pose('person_0', 'world')[:3, 3], [2.0, 3.0, 0.0])


@pytest.mark.parametrize('transforms, frame, reason', [
    ([], 'scanner_link', "'scanner_link' is unknown"),
    ([Transform('map', 'base_link', (0, 0, 0), (0, 0, 0, 1))], 'base_link', "'map' has no parent"),
    ([Transform('a', 'b', (0, 0, 0), (0, 0, 0, 1)), Transform('b', 'a', (0, 0, 0), (0, 0, 0, 1))], 'a', 'cycle'),
])
def test_a_frame_that_does_not_reach_the_world_says_where_it_breaks(transforms, frame, reason):
    with pytest.raises(FrameError, match=reason):
        FrameTree(transforms).path(frame, 'world')


@pytest.mark.parametrize('urdf, reason', [
    ('<robot><link name="a"/>', 'not XML'),
    ('<robt/>', 'expected <robot>'),
    ('<robot><link name="a"/><link name="b"/></robot>', 'exactly one root'),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="floating"><parent link="a"/>'
     '<child link="b"/></joint></robot>', "type 'floating' is not supported"),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="revolute"><parent link="a"/>'
     '<child link="b"/><origin xyz="0 0 nan"/></joint></robot>', 'finite numbers'),
    ('<robot><link name="a"/><link name="b"/><joint name="j" type="revolute"><parent link="a"/>'
     '<child link="b"/><axis xyz="0 0 0"/></joint></robot>', 'zero vector'),
])
def test_a_urdf_it_cannot_use_is_refused_with_the_reason(urdf, reason):
    with pytest.raises(UrdfError, match=reason):
        parse_urdf(urdf)


def test_the_rviz_config_shows_topics_the_cell_publishes_with_qos_that_connects(repo):
    import yaml
    from smartcell.interfaces import TOPICS, Durability, Qos, Reliability, compatible

    config = yaml.safe_load((repo / 'config' / 'smartcell.rviz').read_text())['Visualization Manager']
    assert config['Global Options']['Fixed Frame'] == 'world'
    shown = {}
    for display in config['Displays']:
        source = display.get('Topic') or display.get('Description Topic')
        if source:
            shown[source['Value']] = Qos(Reliability(source['Reliability Policy'].lower().replace(' ', '_')),
                                         Durability(source['Durability Policy'].lower().replace(' ', '_')),
                                         source['Depth'])
    assert {'/robot_description', '/scan', '/humans', '/humans/markers'} <= set(shown)
    publisher_qos = {'/' + t.name.lstrip('/'): t.publisher_qos for t in TOPICS}    # the cell in the root namespace
    for name, qos in shown.items():
        assert compatible(publisher_qos[name], qos) == '', name
