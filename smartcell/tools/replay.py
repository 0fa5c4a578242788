"""`smartcell replay FILE`: re-judge a recorded run and compare with the verdicts it gave.

Reads an MCAP written by the recorder (`smartcell sim --record`, `ros2 launch ... record:=true`),
builds a fresh CellController from the supervisor parameters stored in the file (metadata
`smartcell`; `--config` for a file without them), feeds it the recorded `humans` and
`joint_states` paired by stamp as the supervisor does in lockstep (plus the contacts, motion
results, fatigue and job orders it received), and compares each re-computed verdict (speed
scale, safety state) with the recorded `safety/verdict` of the same stamp.

Prints the agreement: stamps compared, max |delta speed_scale|, the first disagreement. Exit 0 when
every verdict agrees within --tolerance, 1 on a disagreement (or nothing to compare), 2 for a
file or configuration that cannot be used. The first step toward a shadow mode: the same
comparison beside a real cell.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from smartcell.core.recording.bag import RUN_METADATA
from smartcell.core.recording.compare import Agreement, VerdictSample, compare_verdicts

if TYPE_CHECKING:      # the ROS message types; imported where used, so `smartcell replay --help` needs no ROS
    from geometry_msgs.msg import PoseArray
    from sensor_msgs.msg import JointState, PointCloud2

# Recorded topic (relative to the cell's namespace) -> message type, what the supervisor receives.
INPUTS = {'humans': 'geometry_msgs/msg/PoseArray', 'humans/velocities': 'sensor_msgs/msg/PointCloud2',
          'joint_states': 'sensor_msgs/msg/JointState',
          'twin/contacts': 'diagnostic_msgs/msg/DiagnosticArray',
          'arm/trajectory_result': 'diagnostic_msgs/msg/DiagnosticStatus',
          'operator/fatigue': 'std_msgs/msg/Float64', 'mes/job_order': 'std_msgs/msg/String'}
VERDICT_TOPIC = 'safety/verdict'


class ReplayError(Exception):
    """The file cannot be replayed: not an MCAP, no verdicts, no configuration."""


@dataclass
class Recording:
    namespace: str
    parameters: dict[str, Any] | None
    messages: list[tuple[str, Any]] = field(default_factory=list)      # (relative topic, message), file order
    verdicts: list[VerdictSample] = field(default_factory=list)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='smartcell replay', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('file', type=Path, help='MCAP recording (e.g. runs/<run>/run.mcap)')
    parser.add_argument('--tolerance', type=float, default=1e-9,
                        help='largest accepted |delta speed_scale| (default 1e-9: the controller is deterministic)')
    parser.add_argument('--config', type=Path, default=None,
                        help='cell parameter file for a recording without stored supervisor parameters')
    return parser.parse_args(argv)


def read_recording(path: Path) -> Recording:
    """The supervisor's inputs and its verdicts, in the order the recorder received them."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message

    from smartcell.core.recording.msgdef import split_type
    from importlib import import_module
    try:
        with open(path, 'rb') as stream:
            reader = make_reader(stream)
            metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
            stored = metadata.get(RUN_METADATA, {})
            namespace = stored.get('namespace', '/').rstrip('/')
            wanted = {**INPUTS, VERDICT_TOPIC: 'diagnostic_msgs/msg/DiagnosticArray'}
            topics = {f'{namespace}/{name}': name for name in wanted}
            classes = {}
            for name, type_name in wanted.items():
                package, short = split_type(type_name)
                classes[name] = getattr(import_module(f'{package}.msg'), short)
            recording = Recording(namespace or '/', json.loads(stored['parameters']) if 'parameters' in stored
                                  else None)
            for schema, channel, message in reader.iter_messages(topics=list(topics), log_time_order=False):
                name = topics[channel.topic]
                if schema is None or schema.name != wanted[name]:
                    raise ReplayError(f'{channel.topic} is recorded as {schema.name if schema else "?"}, '
                                      f'expected {wanted[name]}')
                msg = deserialize_message(message.data, classes[name])
                if name == VERDICT_TOPIC:
                    recording.verdicts.extend(verdict_samples(msg))
                else:
                    recording.messages.append((name, msg))
    except (OSError, McapError, ValueError, KeyError) as exc:
        raise ReplayError(f'cannot read {path}: {exc!r}') from exc
    return recording


def verdict_samples(msg) -> Iterator[VerdictSample]:
    """The verdict status of a recorded safety/verdict (a status without a readable scale: NaN, never agrees)."""
    from smartcell.core.safety.verdict import VERDICT_STATUS_NAME
    from smartcell.nodes.common import stamp_ns
    for status in msg.status:
        if status.name != VERDICT_STATUS_NAME:
            continue
        values = {kv.key: kv.value for kv in status.values}
        try:
            scale = float(values.get('speed_scale', 'nan'))
        except ValueError:
            scale = math.nan
        yield VerdictSample(stamp_ns(msg.header.stamp), scale, values.get('state', ''))


def supervisor_parameters(recording: Recording, config: Path | None) -> dict[str, Any]:
    """The recorded run's supervisor parameters; replay never writes the run's evidence log."""
    from smartcell.core.node_params import SUPERVISOR
    if recording.parameters is not None:
        values = recording.parameters
    elif config is not None:
        from smartcell.core.params import load_cell_config
        from smartcell.topology import param_registry
        values = {**load_cell_config(config, param_registry()).get('supervisor', {}), 'lockstep': True}
    else:
        raise ReplayError('the recording has no supervisor parameters (metadata "smartcell"); '
                          'give the cell parameter file with --config')
    return {**SUPERVISOR.defaults(), **{k: v for k, v in values.items() if k in SUPERVISOR.by_name},
            'evidence_log': ''}


def build_controller(params: dict[str, Any]):
    """A fresh CellController as the supervisor builds it, with an in-memory order book."""
    from smartcell.core.cell.controller import CellController
    from smartcell.core.cell.orders import OrderBook
    from smartcell.core.tasks.recipe import load_recipe
    from smartcell.share import share_file

    def recipe(job: str):
        return load_recipe(Path(job) if ('/' in job or job.endswith('.yaml')) else share_file('config', f'{job}.yaml'))

    return CellController.from_params(
        params, params['stopping_file'] or share_file('config', 'stopping.yaml'),
        params['body_regions_file'] or share_file('config', 'body_regions.yaml'),
        params['motions_file'] or share_file('config', 'motions.yaml'), recipe, 0.0,
        OrderBook(max_units=int(params['max_order_units'])))


def replay(recording: Recording, controller) -> list[VerdictSample]:
    """Feed the recorded inputs to `controller` in recorded order, in lockstep as the supervisor does
    (the same TickPairing and message readers): people of stamp t (with the humans/velocities of t,
    waited for when the file has that topic) judged with the joints of t. Every recorded people
    message is judged, also before the first recorded verdict: the controller's state (restart hold,
    ramp) depends on them."""
    from smartcell.core.cell.inputs import TickPairing, Velocities, people_velocities
    from smartcell.nodes.common import stamp_ns, stamp_to_s
    from smartcell.nodes.scanner import velocities_from_cloud
    from smartcell.nodes.supervisor_messages import (contacts_from_msg, joint_sample, motion_result,
                                                     people_observation, people_positions)

    verdicts: list[VerdictSample] = []
    # A recording without humans/velocities comes from a cell that sent none: nothing to wait for.
    ticks: TickPairing[PoseArray, PointCloud2, JointState] = TickPairing(
        wait_for_velocities=any(name == 'humans/velocities' for name, _ in recording.messages))
    clock = {'now_s': 0.0}         # the time of the tick being handled, as the lockstep supervisor keeps it

    def take(output, stamp_s: float | None = None) -> None:
        if output.verdict is None:
            return
        at = output.verdict_stamp_s if output.verdict_stamp_s is not None else (
            stamp_s if stamp_s is not None else clock['now_s'])
        fields = controller.verdict_fields(output.verdict)
        verdicts.append(VerdictSample(int(round(at * 1e9)), float(output.verdict.speed_scale), str(fields['state'])))

    def velocities_for(people: PoseArray) -> Velocities | None:
        """As the supervisor: the velocities of the same stamp when they are these people's, else none."""
        cloud = ticks.velocities_at(stamp_ns(people.header.stamp))
        if cloud is None:
            return None
        matched = people_velocities(people_positions(people), people.header.frame_id, velocities_from_cloud(cloud),
                                    cloud.header.frame_id)
        return None if isinstance(matched, str) else matched

    def evaluate(pairs: list[tuple[PoseArray, JointState]]) -> None:
        for people, joints in pairs:
            clock['now_s'] = stamp_to_s(people.header.stamp)
            observation = people_observation(people, velocities_for(people))
            take(controller.on_cycle(observation, joint_sample(joints), clock['now_s']), clock['now_s'])

    for name, msg in recording.messages:
        if name == 'humans':
            evaluate(ticks.add_people(stamp_ns(msg.header.stamp), msg))
        elif name == 'humans/velocities':
            evaluate(ticks.add_velocities(stamp_ns(msg.header.stamp), msg))
        elif name == 'joint_states':
            controller.on_joint_state(joint_sample(msg))
            evaluate(ticks.add_joints(stamp_ns(msg.header.stamp), msg))
        elif name == 'twin/contacts':
            contacts, unreadable = contacts_from_msg(msg)
            take(controller.on_contacts(contacts, clock['now_s'], unreadable))
        elif name == 'arm/trajectory_result':
            result = motion_result(msg)          # None for WARN: progress
            if result is not None:
                take(controller.on_motion_result(*result, clock['now_s']))
        elif name == 'operator/fatigue':
            take(controller.on_fatigue(msg.data, clock['now_s']))
        elif name == 'mes/job_order':
            take(controller.on_order(msg.data, clock['now_s']))
    return verdicts


def check(path: Path, tolerance: float = 1e-9, config: Path | None = None) -> Agreement:
    recording = read_recording(path)
    if not recording.verdicts:
        raise ReplayError(f'{path} has no recorded {VERDICT_TOPIC}')
    from smartcell.core.params import ConfigError
    from smartcell.share import ShareFileMissing
    try:
        controller = build_controller(supervisor_parameters(recording, config))
    except (ConfigError, ShareFileMissing, OSError, ValueError) as exc:
        raise ReplayError(f'cannot build the controller from the recorded configuration: {exc}') from exc
    try:
        replayed = replay(recording, controller)
    finally:
        controller.close()
    return compare_verdicts(recording.verdicts, replayed, tolerance)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.tolerance >= 0:
        print(f'smartcell replay: --tolerance must be >= 0, got {args.tolerance}', file=sys.stderr)
        return 2
    try:
        agreement = check(args.file, args.tolerance, args.config)
    except ReplayError as exc:
        print(f'smartcell replay: {exc}', file=sys.stderr)
        return 2
    print(f'{args.file}: {agreement.summary()}')
    return 0 if agreement.ok else 1
