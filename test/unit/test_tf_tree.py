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
    assert {'/robot_description', '/scan', '/humans', '/humans/markers', '/safety/zones'} <= set(shown)
    publisher_qos = {'/' + t.name.lstrip('/'): t.publisher_qos for t in TOPICS}    # the cell in the root namespace
    for name, qos in shown.items():
        assert compatible(publisher_qos[name], qos) == '', name


@pytest.mark.parametrize('values, expected', [
    ({'zone': 'protective', 'protective_distance_m': '0.42'}, ('protective', 0.42)),
    ({'zone': 'clear', 'protective_distance_m': 'nan'}, ('clear', None)),          # nobody tracked
    ({'zone': 'warning', 'protective_distance_m': '-0.1'}, 'not a distance'),
    ({'zone': 'warning', 'protective_distance_m': 'inf'}, 'not a distance'),
    ({'zone': 'warning', 'protective_distance_m': 'x'}, 'not a number'),
    ({'zone': 'nearby', 'protective_distance_m': '0.4'}, "zone 'nearby'"),
    ({'protective_distance_m': '0.4'}, 'zone None'),
])
def test_the_zone_is_drawn_only_from_a_verdict_it_can_read(values, expected):
    from smartcell.core.robot.tf_tree import zone_view
    view = zone_view(values)
    if isinstance(expected, str):
        assert isinstance(view, str) and expected in view
    else:
        assert (view.zone, view.protective_distance_m) == expected


def test_the_protective_zone_is_the_arm_grown_by_s_p():
    from smartcell.core.robot.kinematics import LINK_CAPSULE_RADII, link_capsules, points_to_capsules_distance
    from smartcell.core.robot.tf_tree import protective_zone
    capsules = link_capsules([0.3, -1.2, 1.4, -1.7, -1.57, 0.5])
    zone = protective_zone(capsules, LINK_CAPSULE_RADII, 0.5)
    assert len(zone) == len(LINK_CAPSULE_RADII)
    for index, capsule in enumerate(zone):
        start, end = np.asarray(capsule.start_m), np.asarray(capsule.end_m)
        side = np.cross(end - start, [0.0, 0.0, 1.0])
        side = side if np.linalg.norm(side) > 1e-9 else np.array([1.0, 0.0, 0.0])
        on_surface = (start + end) / 2 + capsule.radius_m * side / np.linalg.norm(side)
        # the grown surface lies S_p = 0.5 m from that link's surface (the distance the monitor measures)
        distance = points_to_capsules_distance(on_surface, capsules)[0, index]
        assert distance == pytest.approx(0.5, abs=1e-9)
