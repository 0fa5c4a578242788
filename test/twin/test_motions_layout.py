"""The named arm configurations reach the stations of the twin's layout (forward kinematics)."""
import numpy as np
import pytest

from smartcell.core.robot.kinematics import DEFAULT_TOOL_LENGTH_M, forward_kinematics
from smartcell.core.robot.motions import MotionLibrary
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS as LIMITS

pytest.importorskip('pybullet')
from smartcell.twin.world import DEFAULT_LAYOUT  # noqa: E402

HEIGHT_ABOVE_STATION_M = {'pick': 0.02, 'place': 0.02, 'assembly': 0.03}


@pytest.mark.parametrize('station', sorted(HEIGHT_ABOVE_STATION_M))
def test_station_configurations_put_the_gripper_tip_on_the_station(repo, station):
    library = MotionLibrary.from_yaml(repo / 'config' / 'motions.yaml', LIMITS)
    base = np.array(DEFAULT_LAYOUT.robot_base_position_m)
    target = np.array(DEFAULT_LAYOUT.station(station).position_m) - base
    for name, lift in ((station, HEIGHT_ABOVE_STATION_M[station]), (f'above_{station}', 0.25)):
        tool0 = forward_kinematics(library.configurations[name])
        tip = tool0[:3, 3] + DEFAULT_TOOL_LENGTH_M * tool0[:3, 2]
        assert tip == pytest.approx(target + [0.0, 0.0, lift], abs=2e-3), name
        assert tool0[2, 2] == pytest.approx(-1.0, abs=1e-3)      # pointing down


def test_every_robot_station_of_the_shipped_jobs_has_configurations(repo):
    from smartcell.core.tasks.recipe import load_recipe
    library = MotionLibrary.from_yaml(repo / 'config' / 'motions.yaml', LIMITS)
    for job in (repo / 'config' / 'job_gearbox.yaml', repo / 'config' / 'job_demo.yaml',
                repo / 'config' / 'job_kitting.yaml'):
        recipe = load_recipe(job)
        for step in recipe.steps:
            assert step.station in DEFAULT_LAYOUT.by_name, f'{job.name}: {step.station}'
            if step.actor != 'human':
                assert step.station in library.configurations or step.station == 'operator_bench', \
                    f'{job.name}: robot step {step.id} at {step.station} has no arm configuration'


def test_home_is_one_pose_clear_of_the_operators_hands_at_the_shared_station(repo):
    """The twin starts (and restarts) the arm at `home`; the arm's sim backend assumes it before the first
    state. At the shared assembly station the operator's hands are forward at shoulder height: home must
    keep the whole arm well away from them (at shoulder pan 0 the wrist stood 0.13 m from them)."""
    from smartcell.core.node_params import ARM
    from smartcell.core.robot.kinematics import link_capsules
    from smartcell.twin.world import HOME_Q_RAD
    home = MotionLibrary.from_yaml(repo / 'config' / 'motions.yaml', LIMITS).configurations['home']
    assert np.allclose(home, HOME_Q_RAD) and np.allclose(home, ARM.by_name['initial_positions_rad'].default)
    person = DEFAULT_LAYOUT.station('assembly').person_xy_m
    base = np.array(DEFAULT_LAYOUT.robot_base_position_m)
    hands = np.array([person[0] - 0.65, person[1], 1.35]) - base     # arms forward, 0.65 m, shoulder height
    ends = link_capsules(home).reshape(-1, 3)
    assert np.min(np.linalg.norm(ends - hands, axis=1)) > 0.3
