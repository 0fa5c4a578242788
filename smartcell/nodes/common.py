"""What every smartcell node shares: parameter declaration from specs, QoS, diagnostics, main loop."""
from __future__ import annotations

import functools
import os
import signal
import sys
import traceback
from typing import Any, Callable, Mapping

import rclpy
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rcl_interfaces.srv import ListParameters
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from smartcell.interfaces import LATCHED, STREAM, STREAM_SOURCE, Durability, Qos, Reliability
from smartcell.core.params import COMMON_PARAMS, ConfigError, NodeParams, ParamValue
from smartcell.core.safety.graph import CommandPublisherCheck, check_command_publishers
from smartcell.core.robot.command_validation import Invalid, JointSample, validate_joint_state


def qos_profile(qos: Qos) -> QoSProfile:
    """The rclpy profile of a smartcell.interfaces QoS entry."""
    return QoSProfile(depth=qos.depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE if qos.reliability is Reliability.RELIABLE
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.durability is Durability.TRANSIENT_LOCAL
                      else DurabilityPolicy.VOLATILE)


# Streams are reliable: in lockstep simulation a lost message would change the result. Subscribers take
# STREAM_QOS, publishers STREAM_PUB_QOS (a deeper history, for readers that fell behind: interfaces.py).
STREAM_QOS = qos_profile(STREAM)
STREAM_PUB_QOS = qos_profile(STREAM_SOURCE)
# Latched: late joiners (dashboards, the MES bridge) get the last value at once.
LATCHED_QOS = qos_profile(LATCHED)

LEVEL_OK = DiagnosticStatus.OK
LEVEL_WARN = DiagnosticStatus.WARN
LEVEL_ERROR = DiagnosticStatus.ERROR
LEVEL_STALE = DiagnosticStatus.STALE


def declare_parameters(node: Node, params: NodeParams) -> dict[str, ParamValue]:
    """Declare every spec (description, range, read-only) and return validated values.

    Unknown overrides (a typo in YAML or on the command line) and out-of-range values raise
    ConfigError naming the parameter and what is accepted. ROS's own parameters (use_sim_time,
    start_type_description_service: declared by rclpy before this runs) are accepted too.
    """
    ros_own = set(node.list_parameters([], ListParameters.Request.DEPTH_RECURSIVE).names)
    for spec in params.specs:
        descriptor = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
        if spec.choices:
            descriptor.additional_constraints = 'one of: ' + ', '.join(spec.choices)
        if spec.kind() is float and spec.min is not None and spec.max is not None:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(spec.min),
                                                                  to_value=float(spec.max), step=0.0)]
        elif spec.kind() is int and spec.min is not None and spec.max is not None:
            descriptor.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=1)]
        try:
            node.declare_parameter(spec.name, spec.default, descriptor)
        except Exception as exc:  # rclpy raises several types for bad overrides; all mean bad config
            raise ConfigError(f'parameter {node.get_name()}.{spec.name}: {exc}; accepted: {spec.accepted()}') from exc
    unknown = sorted(override_names(node) - ros_own - set(params.by_name) - set(COMMON_PARAMS))
    if unknown:
        raise ConfigError(f'unknown parameter(s) {unknown} for node {node.get_name()!r}; '
                          f'accepted: {", ".join(sorted(params.by_name))}')
    raw = {spec.name: node.get_parameter(spec.name).value for spec in params.specs}
    return params.resolve(raw)


def override_names(node: Node) -> set[str]:
    """The names of the parameter overrides (params files, `-p`) rcl resolved for `node`'s name.

    rclpy keeps the overrides private (Node._parameter_overrides); its public way to show them is a
    node created with automatically_declare_parameters_from_overrides, which declares every one. A
    short-lived twin of `node` (same name, namespace and context, so the same overrides) is that node:
    no parameter, logger or type description services and no rosout, so it serves nothing in the
    milliseconds it is on the graph, and it is gone before `node` publishes anything.
    """
    twin = Node(node.get_name(), namespace=node.get_namespace(), context=node.context,
                cli_args=['--ros-args', '-p', 'start_type_description_service:=false'],
                start_parameter_services=False, enable_rosout=False,
                automatically_declare_parameters_from_overrides=True)
    try:
        return set(twin.list_parameters([], ListParameters.Request.DEPTH_RECURSIVE).names)
    finally:
        twin.destroy_node()


def declare_config(node: Node, params: NodeParams) -> Any:
    """Declare the node's parameters (declare_parameters) and return them as its frozen config."""
    return params.config(declare_parameters(node, params))


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_ns(stamp: Time) -> int:
    """A stamp as integer nanoseconds: the exact key lockstep nodes pair messages by."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def joint_state_sample(msg: JointState, allow_extra_joints: bool = False) -> JointSample | Invalid:
    """The one JointState-to-arrays conversion: positions/velocities in the arm's joint order, or why not.

    Never raises: names without positions, NaN, missing or unknown joints are an Invalid reason.
    """
    try:
        return validate_joint_state(msg.header.stamp.sec, msg.header.stamp.nanosec, list(msg.name),
                                    list(msg.position), list(msg.velocity), allow_extra_joints=allow_extra_joints)
    except Exception as exc:   # noqa: BLE001 - a message object the validator cannot read is still a reason
        return Invalid(f'joint state cannot be read: {exc!r}')


def steady_clock() -> Clock:
    """A clock that never follows /clock: for deadmen and watchdogs that sim time must not disarm."""
    return Clock(clock_type=ClockType.STEADY_TIME)


def guarded(callback: Callable[..., Any], on_error: Callable[[str, BaseException], None]) -> Callable[..., Any]:
    """Wrap a subscription, timer or service callback: an exception goes to on_error(callback name,
    exception), never up into the executor (which would end the process). A service callback
    answers success=false with the error."""
    name = getattr(callback, '__name__', repr(callback))

    @functools.wraps(callback)
    def wrapper(*args: Any) -> Any:
        try:
            return callback(*args)
        except Exception as exc:  # noqa: BLE001 - the whole point: nothing may kill a safety process
            try:
                on_error(name, exc)
            except Exception:  # noqa: BLE001 - the error handler itself failed: still keep running
                traceback.print_exc()
            if len(args) == 2 and hasattr(args[1], 'success'):
                args[1].success, args[1].message = False, f'internal error in {name}: {exc!r}'
                return args[1]
            return None
    return wrapper


def command_publishers(node: Node, topic: str, expected_node: str, subscription: Any = None,
                       allow_none: bool = False) -> CommandPublisherCheck:
    """The ROS graph's publishers of `topic`, and the writers `subscription` is matched with at the DDS
    level, judged by core.safety.graph.check_command_publishers (expected: `expected_node` in this
    node's namespace)."""
    infos = node.get_publishers_info_by_topic(topic)
    matched = subscription.get_publisher_count() if subscription is not None else None
    return check_command_publishers(topic, [(info.node_name, info.node_namespace) for info in infos],
                                    expected_node, node.get_namespace(), matched, allow_none)


def duration_msg(seconds: float) -> Duration:
    nanoseconds = int(seconds * 1e9)
    return Duration(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def s_to_stamp(seconds: float) -> Time:
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def diagnostic_status(name: str, hardware_id: str, level: int, message: str,
                      values: Mapping[str, object]) -> DiagnosticStatus:
    """One /diagnostics entry; `values` are shown to operators, so units go in the key names."""
    return DiagnosticStatus(level=bytes([level]) if isinstance(level, int) else level, name=name,
                            message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()])


def diagnostic_array(stamp: Time, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = statuses
    return msg


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)


def _make_executor():
    # EventsExecutor costs ~1 ms a tick against ~3.7 ms for SingleThreadedExecutor (measured in
    # the lockstep twin loop). It is driven with spin_once from the main thread, the way that was
    # proven here; SMARTCELL_EXECUTOR=single falls back to the classic executor.
    if os.environ.get('SMARTCELL_EXECUTOR', 'events') == 'single':
        return SingleThreadedExecutor()
    from rclpy.experimental import EventsExecutor
    return EventsExecutor()


def run_node(make_node: Callable[[], Node], args: list[str] | None = None) -> int:
    """Main of every node executable: init, build (config errors exit 2 with the reason), spin, shut down."""
    rclpy.init(args=args if args is not None else sys.argv)
    stopping = {'flag': False}

    def request_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        stopping['flag'] = True
        # A terminal Ctrl-C reaches every node and `ros2 launch` sends another SIGINT: the second
        # one must not kill a node in the middle of its clean shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    node = None
    try:
        try:
            node = make_node()
        except ConfigError as exc:
            print(f'[smartcell] configuration error: {exc}', file=sys.stderr, flush=True)
            return 2
        executor = _make_executor()
        executor.add_node(node)
        while not stopping['flag'] and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        shutdown = getattr(node, 'on_shutdown', None)
        if shutdown is not None:
            shutdown()
            executor.spin_once(timeout_sec=0.05)   # let the final messages leave
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
