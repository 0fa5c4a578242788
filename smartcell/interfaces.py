"""Every topic and service of the cell, once: name, standard type, QoS, who publishes and who listens.

Pure data (no rclpy): nodes turn `Qos` into rclpy profiles with `smartcell.nodes.common.qos_profile`,
tests check the table (every subscription has a compatible publisher) and a running cell's ROS
graph against it, and the README's interface table is this one.

QoS rules (DDS request/offer): a RELIABLE subscription needs a RELIABLE publisher; a TRANSIENT_LOCAL
subscription needs a TRANSIENT_LOCAL publisher. Sensor inputs take the sensor-data QoS (best
effort) that drivers publish with, so a driver's best-effort stream and the twin's reliable one
both connect.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reliability(str, Enum):
    RELIABLE = 'reliable'
    BEST_EFFORT = 'best_effort'


class Durability(str, Enum):
    VOLATILE = 'volatile'
    TRANSIENT_LOCAL = 'transient_local'


@dataclass(frozen=True)
class Qos:
    reliability: Reliability
    durability: Durability
    depth: int


STREAM = Qos(Reliability.RELIABLE, Durability.VOLATILE, 20)          # periodic data between cell nodes
# A stream's publishers keep a deeper history than its subscribers' queues: a reliable reader that fell
# behind gets what it missed re-sent from it (bench/bench_recorder_stall.py: a recorder frozen 0.5 s lost
# 22-23 of the lockstep twin's ticks per topic with 20, none with 200; the twin ran 80-220 ticks/s, so 200
# covers 0.9-2.5 s), while a subscriber's own queue stays short, so a safety node that lags does not work
# through old data.
STREAM_SOURCE = Qos(Reliability.RELIABLE, Durability.VOLATILE, 200)
SENSOR = Qos(Reliability.BEST_EFFORT, Durability.VOLATILE, 5)         # rclpy's qos_profile_sensor_data
LATCHED = Qos(Reliability.RELIABLE, Durability.TRANSIENT_LOCAL, 1)    # latest value for late joiners
COMMAND = Qos(Reliability.RELIABLE, Durability.VOLATILE, 10)          # commands and results
EVENTS = Qos(Reliability.RELIABLE, Durability.VOLATILE, 500)          # a job end's burst arrives whole
ORDERS = Qos(Reliability.RELIABLE, Durability.TRANSIENT_LOCAL, 100)   # orders survive a late supervisor
REPORTS = Qos(Reliability.RELIABLE, Durability.TRANSIENT_LOCAL, 10)   # the latest reports for late joiners
TF = Qos(Reliability.RELIABLE, Durability.VOLATILE, 100)              # tf2_ros's /tf profile
TF_STATIC = Qos(Reliability.RELIABLE, Durability.TRANSIENT_LOCAL, 1)   # tf2_ros's: one message, every static frame

EXTERNAL = 'external'     # a publisher or subscriber outside the cell's nodes (driver, MES, operator tools)


@dataclass(frozen=True)
class Topic:
    name: str                      # relative names resolve in the cell's namespace
    type: str                      # pkg/msg/Type
    publishers: tuple[str, ...]    # node names (smartcell.topology) or EXTERNAL
    subscribers: tuple[str, ...]
    publisher_qos: Qos
    subscriber_qos: Qos
    description: str


@dataclass(frozen=True)
class Service:
    name: str
    type: str
    server: str
    description: str


def _topic(name: str, type_: str, publishers: tuple[str, ...], subscribers: tuple[str, ...], qos: Qos,
           description: str, subscriber_qos: Qos | None = None) -> Topic:
    """`qos` is both sides' unless `subscriber_qos` is given; a STREAM is published with STREAM_SOURCE."""
    return Topic(name, type_, publishers, subscribers, STREAM_SOURCE if qos == STREAM else qos,
                 subscriber_qos or qos, description)


TOPICS: tuple[Topic, ...] = (
    _topic('scan', 'sensor_msgs/msg/LaserScan', ('twin', EXTERNAL), ('scanner',), STREAM,
           'safety laser scanner (the twin, or the scanner driver on hardware)', SENSOR),
    _topic('humans', 'geometry_msgs/msg/PoseArray', ('scanner',), ('supervisor', 'robot_state', EXTERNAL), STREAM,
           'tracked people, world frame, m; only the scanner may publish it'),
    _topic('humans/velocities', 'sensor_msgs/msg/PointCloud2', ('scanner',), ('supervisor', EXTERNAL), STREAM,
           'per person of `humans` (same header and order): x, y m, Kalman velocity vx, vy m/s and its '
           'covariance (m/s)^2, float64 fields; only the scanner may publish it'),
    _topic('humans/markers', 'visualization_msgs/msg/MarkerArray', ('scanner',), (EXTERNAL,), STREAM,
           'people for RViz'),
    _topic('twin/joint_states', 'sensor_msgs/msg/JointState', ('twin',), ('arm',), STREAM,
           'simulated arm joint states (rad, rad/s)'),
    _topic('twin/joint_command', 'sensor_msgs/msg/JointState', ('arm',), ('twin',), STREAM,
           'sim backend: joint position targets for the physics'),
    _topic('joint_states', 'sensor_msgs/msg/JointState', ('arm',), ('supervisor', 'energy_meter', 'vibration_sensor',
                                                                     'mes_bridge', 'robot_state', EXTERNAL), STREAM,
           "the arm's joint states, relayed at the tick they were measured"),
    _topic('safety/verdict', 'diagnostic_msgs/msg/DiagnosticArray', ('supervisor',),
           ('arm', 'mes_bridge', 'robot_state', EXTERNAL),
           STREAM, 'the signed safety verdict: mode, state, zone, separation, S_p, speed_scale, motion_id, '
           'sequence, auth'),
    _topic('speed_scale', 'std_msgs/msg/Float64', ('supervisor',), ('mes_bridge', EXTERNAL), LATCHED,
           'the speed scale the arm must apply, [0, 1]'),
    _topic('arm/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory', ('supervisor',), ('arm',), COMMAND,
           'signed segments for the arm (header.frame_id = <motion-id>#<hmac>)'),
    _topic('arm/trajectory_result', 'diagnostic_msgs/msg/DiagnosticStatus', ('arm',), ('supervisor',), COMMAND,
           'per motion: OK when done, ERROR when refused'),
    _topic('arm/mode', 'std_msgs/msg/String', ('arm',), (EXTERNAL,), LATCHED, 'idle, executing, holding...'),
    _topic('arm/speed_limit_applied', 'sensor_msgs/msg/TimeReference', ('arm',), (EXTERNAL,), STREAM,
           'the scale the arm applies, stamped with the verdict it answers (latency benches)'),
    _topic('cell/state', 'std_msgs/msg/String', ('supervisor',), ('mes_bridge', EXTERNAL), LATCHED,
           'idle, starting, running, paused, protective_stop, emergency_stop, fault, stopping'),
    _topic('cell/events', 'std_msgs/msg/String', ('supervisor',), ('mes_bridge', 'energy_meter', EXTERNAL), EVENTS,
           'one JSON object per event, with a per-cell gapless seq'),
    _topic('cell/events/replay_request', 'std_msgs/msg/UInt64', ('mes_bridge', EXTERNAL), ('supervisor',), LATCHED,
           'the last event seq the asker has: the supervisor replays the journaled events after it'),
    _topic('cell/events/replay', 'std_msgs/msg/String', ('supervisor',), ('mes_bridge', EXTERNAL), EVENTS,
           'journaled cell events replayed on request, exactly as first published (same seq and event_id)'),
    _topic('cell/kpi', 'diagnostic_msgs/msg/DiagnosticArray', ('supervisor',), (EXTERNAL,), LATCHED,
           'cumulative shift KPIs'),
    _topic('robot/intent', 'std_msgs/msg/String', ('supervisor',), (EXTERNAL,), LATCHED,
           "JSON: the robot's current step and what it waits for"),
    _topic('operator/current_step', 'std_msgs/msg/String', ('supervisor',), ('twin', EXTERNAL), LATCHED,
           "JSON: the person's current step"),
    _topic('operator/next_step', 'std_msgs/msg/String', ('supervisor',), (EXTERNAL,), LATCHED,
           "JSON: the person's next planned step"),
    _topic('operator/fatigue', 'std_msgs/msg/Float64', ('wearable',), ('supervisor',), LATCHED,
           'fatigue index [0, 1]'),
    _topic('twin/contacts', 'diagnostic_msgs/msg/DiagnosticArray', ('twin',), ('supervisor',), COMMAND,
           'simulated person-robot contacts with body region and force'),
    _topic('mes/job_order', 'std_msgs/msg/String', ('mes_bridge', EXTERNAL), ('supervisor',), ORDERS,
           'validated ISA-95 job orders (JSON)'),
    _topic('energy/report', 'std_msgs/msg/String', ('energy_meter',), ('mes_bridge', EXTERNAL), REPORTS,
           'energy and CO2e per cycle and part (JSON)', STREAM),
    _topic('vibration/features', 'std_msgs/msg/Float64MultiArray', ('vibration_sensor',), (EXTERNAL,), STREAM,
           'condition indicators per window'),
    _topic('vibration/health', 'diagnostic_msgs/msg/DiagnosticArray', ('vibration_sensor',), (EXTERNAL,), STREAM,
           'health, fault class, ISO 20816 zone, RUL'),
    _topic('/tf', 'tf2_msgs/msg/TFMessage', ('robot_state', EXTERNAL), (EXTERNAL,), TF,
           "the robot's links from joint_states and world -> person_<i> per tracked person (robot_state_publisher "
           'publishes the links instead on hardware where it is installed)'),
    _topic('/tf_static', 'tf2_msgs/msg/TFMessage', ('robot_state', EXTERNAL), (EXTERNAL,), TF_STATIC,
           "world -> base_link and world -> scanner_link from the cell layout, the URDF's fixed joints"),
    _topic('safety/zones', 'visualization_msgs/msg/MarkerArray', ('robot_state',), (EXTERNAL,), STREAM,
           "the protective zone for RViz: the arm's link capsules grown by the verdict's S_p, in base_link"),
    _topic('/robot_description', 'std_msgs/msg/String', ('robot_state', EXTERNAL), (EXTERNAL,), LATCHED,
           'the URDF (urdf/ur5e.urdf), for RViz and TF consumers'),
    _topic('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray',
           ('twin', 'scanner', 'arm', 'supervisor', 'robot_state', 'vibration_sensor', 'energy_meter', 'wearable',
            'mes_bridge'),
           (EXTERNAL,), COMMAND, 'every node\'s status (diagnostic_aggregator groups them)'),
)

SERVICES: tuple[Service, ...] = tuple(
    Service(f'cell/{name}', 'std_srvs/srv/Trigger', 'supervisor', f'cell request: {name}')
    for name in ('start', 'stop', 'pause', 'resume', 'reset', 'emergency_stop')
) + tuple(
    Service(f'safety/mode/{mode}', 'std_srvs/srv/Trigger', 'supervisor', f'safety mode: {mode}')
    for mode in ('automatic', 'collaborative', 'manual_reduced')
) + (
    Service('operator/step_done', 'std_srvs/srv/Trigger', 'supervisor', "the person's step is done"),
    Service('cell/operator_request', 'diagnostic_msgs/srv/AddDiagnostics', 'supervisor',
            'a signed operator request in load_namespace (or {"login": name} for the salt and iterations)'),
    Service('cell/cancel_order', 'diagnostic_msgs/srv/AddDiagnostics', 'supervisor',
            'cancel a waiting job order (its id in load_namespace); answers success and message'),
    Service('arm/stop', 'std_srvs/srv/Trigger', 'arm', 'stop the arm (anyone may)'),
    Service('arm/resume', 'std_srvs/srv/Trigger', 'arm', 'release a stop (the supervisor only)'),
)


def topic(name: str) -> Topic:
    for entry in TOPICS:
        if entry.name == name:
            return entry
    raise KeyError(f'no topic {name!r} in smartcell.interfaces.TOPICS')


def compatible(publisher: Qos, subscriber: Qos) -> str:
    """'' when a subscriber with `subscriber` QoS receives from a publisher with `publisher`, else why not."""
    if subscriber.reliability is Reliability.RELIABLE and publisher.reliability is Reliability.BEST_EFFORT:
        return 'a reliable subscription does not match a best-effort publisher'
    if subscriber.durability is Durability.TRANSIENT_LOCAL and publisher.durability is Durability.VOLATILE:
        return 'a transient-local subscription does not match a volatile publisher'
    return ''
