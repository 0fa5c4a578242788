"""The twin's task-driven operator at a handover: waits with the arms down until the arm holds the part out."""
import json

import numpy as np
import pytest
from std_msgs.msg import String

from smartcell.core.cell.controller import HANDOVER_POSE
from smartcell.core.robot.motions import UR5E_JOINT_LIMITS, MotionLibrary
from smartcell.nodes.twin import SimulatedOperator
from smartcell.twin.human import PathBuilder
from smartcell.twin.robot import reset_joints
from smartcell.twin.world import DEFAULT_LAYOUT, HOME_Q_RAD, CellWorld

pytestmark = pytest.mark.twin
DT_S = 1.0 / 30.0


class Acknowledgements:
    """Stands in for the operator/step_done client: counts the presses and when they came."""

    def __init__(self, world: CellWorld) -> None:
        self.world, self.at_s = world, []

    def service_is_ready(self) -> bool:
        return True

    def call_async(self, request) -> None:
        self.at_s.append(self.world.sim_time)


class Log:
    def info(self, text: str) -> None:
        pass


def run(world: CellWorld, operator: SimulatedOperator, seconds: float) -> list[float]:
    """Step the world and the operator; the person's reach at each step."""
    reaches = []
    for _ in range(int(seconds / DT_S)):
        world.step(DT_S)
        operator.tick()
        reaches.append(world.paths[0].state_at(world.sim_time).reach)
    return reaches


def test_the_operator_reaches_for_the_part_only_once_the_arm_holds_it_out(client, urdf_path, repo):
    bench = DEFAULT_LAYOUT.station('operator_bench').person_position_m()
    world = CellWorld(client, urdf_path=urdf_path, people=[PathBuilder(bench).wait(3600.0).build()])
    present = MotionLibrary.from_yaml(repo / 'config' / 'motions.yaml', UR5E_JOINT_LIMITS).configurations[HANDOVER_POSE]
    acks = Acknowledgements(world)
    operator = SimulatedOperator(world, acks, Log(), present)
    world.set_joint_targets(np.asarray(HOME_Q_RAD))
    operator.on_step(String(data=json.dumps({'unit': 0, 'step': 'present_part', 'station': 'assembly',
                                             'handover': True, 'started_s': 0.0, 'expected_end_s': 6.0,
                                             'work_s': 3.0})))
    # The arm stays at home (its wrist at hand height over the shared station): the person walks there
    # and waits with the arms down, touching nothing, acknowledging nothing.
    reaches = run(world, operator, 20.0)
    person = world.paths[0].state_at(world.sim_time)
    assert np.hypot(person.x_m - 1.20, person.y_m) < 0.05, 'the person did not get to the assembly station'
    assert max(reaches) == 0.0 and acks.at_s == []
    assert world.person_robot_contacts() == []
    # The arm holds the part out: the person reaches, works for their own 3 s of the step (its planned
    # end also holds the arm's approach) and acknowledges once.
    reset_joints(world.robot, present)
    world.set_joint_targets(present)
    start_s = world.sim_time
    reaches = run(world, operator, 8.0)
    assert max(reaches) == pytest.approx(1.0)
    assert len(acks.at_s) == 1 and 3.0 <= acks.at_s[0] - start_s < 4.5


def test_the_operator_works_at_the_shared_station_only_once_the_arm_has_left_it(client, urdf_path, repo):
    bench = DEFAULT_LAYOUT.station('operator_bench').person_position_m()
    world = CellWorld(client, urdf_path=urdf_path, people=[PathBuilder(bench).wait(3600.0).build()])
    configurations = MotionLibrary.from_yaml(repo / 'config' / 'motions.yaml', UR5E_JOINT_LIMITS).configurations
    acks = Acknowledgements(world)
    operator = SimulatedOperator(world, acks, Log(), configurations[HANDOVER_POSE])
    # The arm still holds the part out over the station (a handover just ended): the person waits.
    reset_joints(world.robot, configurations[HANDOVER_POSE])
    world.set_joint_targets(configurations[HANDOVER_POSE])
    operator.on_step(String(data=json.dumps({'unit': 0, 'step': 'assemble_part', 'station': 'assembly',
                                             'handover': False, 'started_s': 0.0, 'expected_end_s': 4.0})))
    reaches = run(world, operator, 20.0)
    assert max(reaches) == 0.0 and acks.at_s == [] and world.person_robot_contacts() == []
    # The arm goes to the pick station: the person reaches in, works 4 s and acknowledges once.
    reset_joints(world.robot, configurations['pick'])
    world.set_joint_targets(configurations['pick'])
    start_s = world.sim_time
    reaches = run(world, operator, 8.0)
    assert max(reaches) == pytest.approx(1.0)
    assert len(acks.at_s) == 1 and acks.at_s[0] - start_s >= 4.0
