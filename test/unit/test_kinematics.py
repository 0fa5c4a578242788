"""UR5e kinematics: FK against hand-derived DH values, IK round trips, limits, link capsules."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smartcell.core.robot.kinematics import (JOINT_NAMES, LINK_CAPSULE_RADII, UR5E_LIMITS, IKError, JointLimitError,
                                       JointLimits, capsule_point_velocities, check_joint_limits,
                                       forward_kinematics, inverse_kinematics, link_capsules, link_frames,
                                       points_to_capsules_distance)

D1, A2, A3, D4, D5, D6 = 0.1625, -0.425, -0.3922, 0.1333, 0.0997, 0.0996

# Hand derivation from the DH table (frame i = frame i-1 · Rz(q_i) Tz(d_i) Tx(a_i) Rx(alpha_i)),
# in the vendor `base` frame, then base_link = Rz(pi) · base, i.e. (x, y, z) -> (-x, -y, z).
#
# Zero pose: frame 1 sits at (0, 0, d1) with x1 = x0, y1 = z0, z1 = -y0 (alpha1 = pi/2).
#   a2, a3 run along x1 = x0: frame 3 at (a2 + a3, 0, d1) = (-0.8172, 0, 0.1625).
#   d4 runs along z3 = z1 = -y0: frame 4 at (-0.8172, -0.1333, 0.1625); alpha4 = pi/2 gives
#   y4 = z3 = -y0 and z4 = -y3 = -z0.  d5 runs along z4 = -z0: frame 5 at z = 0.1625 - 0.0997 = 0.0628;
#   alpha5 = -pi/2 gives z5 = y4 = -y0.  d6 runs along z5: tool0 at y = -(0.1333 + 0.0996) = -0.2329.
#   tool0 in base = (-0.8172, -0.2329, 0.0628)  ->  in base_link (0.8172, 0.2329, 0.0628),
#   tool axes in base: x6 = x0, z6 = -y0, y6 = z0  ->  in base_link: x = -x, z = +y, y = +z.
# Upright arm q2 = -pi/2: x2 = -z0, so a2 and a3 point up: frame 3 at z = d1 + 0.425 + 0.3922 = 0.9797;
#   d4 along -y0, then z4 = -y3 = -x0 so d5 goes along -x0: x = -0.0997; z5 = y4 = -y0: y = -0.2329.
#   tool0 in base_link (0.0997, 0.2329, 0.9797); tool x = -z, z = +y, y = z x x = -x.
# Shoulder pan q1 = pi/2: the zero pose rotated by +90 deg about z: base (0.2329, -0.8172, 0.0628),
#   base_link (-0.2329, 0.8172, 0.0628).
# Wrist 2 q5 = pi/2: frame 5 stays at base (-0.8172, -0.1333, 0.0628); rotating +90 deg about
#   z4 = -z0 turns y4 = -y0 into -x0, so z5 = -x0 and d6 goes along -x: base (-0.9168, -0.1333, 0.0628),
#   base_link (0.9168, 0.1333, 0.0628).
HAND_FK = [
    ([0, 0, 0, 0, 0, 0], [0.8172, 0.2329, 0.0628], np.array([[-1, 0, 0], [0, 0, 1], [0, 1, 0]])),
    ([0, -np.pi / 2, 0, 0, 0, 0], [0.0997, 0.2329, 0.9797], np.array([[0, -1, 0], [0, 0, 1], [-1, 0, 0]])),
    ([np.pi / 2, 0, 0, 0, 0, 0], [-0.2329, 0.8172, 0.0628], None),
    ([0, 0, 0, 0, np.pi / 2, 0], [0.9168, 0.1333, 0.0628], None),
]


@pytest.mark.parametrize('q, position, rotation', HAND_FK)
def test_forward_kinematics_matches_hand_derivation(q, position, rotation):
    pose = forward_kinematics(q)
    np.testing.assert_allclose(pose[:3, 3], position, atol=1e-9)
    if rotation is not None:
        np.testing.assert_allclose(pose[:3, :3], rotation, atol=1e-9)
    np.testing.assert_allclose(pose[3], [0, 0, 0, 1])


def test_link_frames_start_at_vendor_base_and_end_at_tool0():
    q = np.array([0.3, -1.2, 1.1, -0.5, 0.7, 0.2])
    frames = link_frames(q)
    assert frames.shape == (7, 4, 4)
    np.testing.assert_allclose(frames[0], np.diag([-1.0, -1.0, 1.0, 1.0]))    # base = Rz(pi) base_link
    np.testing.assert_allclose(frames[1][:3, 3], [0, 0, D1], atol=1e-12)
    np.testing.assert_allclose(frames[-1], forward_kinematics(q))


def test_reach_matches_datasheet():
    # Stretched arm: the wrist centre is |a2| + |a3| = 0.8172 m from the shoulder; datasheet reach 850 mm.
    pose = forward_kinematics([0, 0, 0, 0, 0, 0])
    shoulder = np.array([0, 0, D1])
    assert 0.80 < np.linalg.norm(pose[:3, 3] - shoulder) < 0.87


def _well_conditioned(q):
    # Away from the elbow (sin q3 = 0) and wrist (sin q5 = 0) singularities the solution is unique
    # per branch, so a round trip must come back to the very same joints.
    return abs(np.sin(q[2])) > 0.05 and abs(np.sin(q[4])) > 0.05


joint_vectors = st.lists(st.floats(-np.pi, np.pi, allow_nan=False), min_size=6, max_size=6).map(np.array)


@settings(max_examples=300, deadline=None)
@given(q=joint_vectors, seed=joint_vectors)
def test_ik_round_trip_reaches_the_pose(q, seed):
    target = forward_kinematics(q)
    solution = inverse_kinematics(target, seed)
    # 1e-6 is what inverse_kinematics checks its answers to; near the wrist singularity q6 is
    # ill-conditioned, so the last digits are not better than that.
    np.testing.assert_allclose(forward_kinematics(solution), target, atol=1e-6)
    check_joint_limits(solution, UR5E_LIMITS)


@settings(max_examples=300, deadline=None)
@given(q=joint_vectors)
def test_ik_seeded_with_the_answer_returns_it(q):
    if not _well_conditioned(q):
        return
    np.testing.assert_allclose(inverse_kinematics(forward_kinematics(q), q), q, atol=1e-6)


def test_ik_picks_the_solution_nearest_to_the_seed_and_wraps_by_two_pi():
    q = np.array([-0.4, -1.0, 1.2, -1.5, -1.4, 0.3])
    seed = q + np.array([2 * np.pi, 0, 0, 0, 0, -2 * np.pi])     # same pose, other turn of joints 1 and 6
    solution = inverse_kinematics(forward_kinematics(q), seed)
    np.testing.assert_allclose(solution, seed, atol=1e-6)


def test_ik_unreachable_pose_raises():
    target = np.eye(4)
    target[:3, 3] = [1.5, 0.0, 0.3]
    with pytest.raises(IKError, match='reach'):
        inverse_kinematics(target, np.zeros(6))


def test_ik_no_solution_within_limits_raises():
    q = np.array([0.0, -1.0, 1.5, -1.0, 1.0, 0.0])
    narrow = JointLimits(lower=np.array([-0.1, -0.1, -0.1, -0.1, -0.1, -0.1]),
                         upper=np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
                         velocity=UR5E_LIMITS.velocity, effort=UR5E_LIMITS.effort)
    with pytest.raises(IKError, match='within the joint limits'):
        inverse_kinematics(forward_kinematics(q), q, narrow)


def test_ik_rejects_a_non_rotation():
    target = np.eye(4) * 2.0
    with pytest.raises(IKError, match='rotation'):
        inverse_kinematics(target, np.zeros(6))


def test_limits_are_the_ur5e_datasheet_values():
    np.testing.assert_allclose(np.degrees(UR5E_LIMITS.upper), [360, 360, 180, 360, 360, 360])
    np.testing.assert_allclose(UR5E_LIMITS.lower, -UR5E_LIMITS.upper)
    np.testing.assert_allclose(np.degrees(UR5E_LIMITS.velocity), [180] * 6)
    np.testing.assert_allclose(UR5E_LIMITS.effort, [150, 150, 150, 28, 28, 28])
    assert len(JOINT_NAMES) == 6 and JOINT_NAMES[2] == 'elbow_joint'


@pytest.mark.parametrize('joint, value', [(2, 3.3), (0, -6.5), (5, float('nan'))])
def test_check_joint_limits_names_joint_value_and_range(joint, value):
    q = np.zeros(6)
    q[joint] = value
    with pytest.raises(JointLimitError) as info:
        check_joint_limits(q, UR5E_LIMITS)
    message = str(info.value)
    assert JOINT_NAMES[joint] in message
    assert f'{UR5E_LIMITS.upper[joint]:.4f}' in message


def test_check_joint_limits_accepts_the_boundary():
    check_joint_limits(UR5E_LIMITS.upper.copy(), UR5E_LIMITS)
    check_joint_limits(UR5E_LIMITS.lower.copy(), UR5E_LIMITS)


@settings(max_examples=200, deadline=None)
@given(q=joint_vectors)
def test_capsules_contain_every_link_frame_origin(q):
    capsules = link_capsules(q)
    assert capsules.shape == (len(LINK_CAPSULE_RADII), 2, 3)
    origins = link_frames(q)[:, :3, 3]
    distances = points_to_capsules_distance(origins, capsules)
    assert np.all(distances.min(axis=1) <= 0.0), distances.min(axis=1)


def test_tool_capsule_reaches_the_tool_tip():
    q = np.array([0.2, -1.3, 1.4, -1.6, -1.57, 0.0])
    pose = forward_kinematics(q)
    tip = pose[:3, 3] + 0.2 * pose[:3, 2]
    assert points_to_capsules_distance(tip, link_capsules(q, tool_length=0.2)).min() <= 0.0
    assert points_to_capsules_distance(tip, link_capsules(q, tool_length=0.05)).min() > 0.0


def test_capsule_velocities_of_a_pure_shoulder_pan_rotation_are_omega_cross_r():
    q = np.array([0.3, -1.2, 1.1, -0.5, 0.7, 0.2])
    omega_radps = 1.5
    qd = np.array([omega_radps, 0, 0, 0, 0, 0])
    velocities = capsule_point_velocities(q, qd)
    expected = np.cross([0.0, 0.0, omega_radps], link_capsules(q))
    np.testing.assert_allclose(velocities, expected, atol=1e-6)


def test_capsule_velocities_are_zero_at_rest_and_scale_with_speed():
    q = np.array([0.3, -1.2, 1.1, -0.5, 0.7, 0.2])
    qd = np.array([0.1, -0.4, 0.3, 0.5, -0.2, 0.6])
    np.testing.assert_allclose(capsule_point_velocities(q, np.zeros(6)), 0.0)
    np.testing.assert_allclose(capsule_point_velocities(q, 2 * qd), 2 * capsule_point_velocities(q, qd),
                               atol=1e-7)


@pytest.mark.parametrize('q', [
    [0.0, 0.0, 0.0, -1.6, 0.0, 2.0],                      # wrist singular (q5 = 0) and arm stretched
    [0.0, -np.pi / 2, 0.0, -np.pi / 2, -np.pi / 2, 0.0],  # shoulder singular: wrist centre on the d4 circle
    [0.5, -1.0, 1.2, 0.3, np.pi, -0.7],                   # wrist singular (q5 = pi)
])
def test_ik_handles_singular_poses(q):
    target = forward_kinematics(q)
    solution = inverse_kinematics(target, np.zeros(6))
    np.testing.assert_allclose(forward_kinematics(solution), target, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_segment_distances_match_dense_sampling(seed):
    from smartcell.core.robot.kinematics import segment_distances
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (3, 2, 3))
    b = rng.uniform(-1, 1, (4, 2, 3))
    a[0, 1] = a[0, 0]                                   # a point
    b[1, 1] = b[1, 0] + 1e-3 * (b[1, 1] - b[1, 0])      # nearly a point
    b[2] = b[3] + 0.3 * rng.normal(size=3)              # parallel to b[3], shifted
    distances = segment_distances(a, b)
    u = np.linspace(0, 1, 201)[:, None]
    for i in range(3):
        pa = a[i, 0] + u * (a[i, 1] - a[i, 0])
        for j in range(4):
            pb = b[j, 0] + u * (b[j, 1] - b[j, 0])
            dense = np.linalg.norm(pa[:, None] - pb[None], axis=2).min()
            assert distances[i, j] <= dense + 1e-9           # never above any sampled pair
            assert distances[i, j] >= dense - 0.02           # and the 1/200 sampling gets within 2 cm
