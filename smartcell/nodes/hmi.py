"""HMI node: the operator station in the browser, talking to the cell through its usual interfaces."""
from __future__ import annotations

import concurrent.futures
import ipaddress
import json
import queue
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from smartcell.core.node_params import HMI
from smartcell.core.params import ConfigError
from smartcell.hmi.auth import Session, Sessions
from smartcell.hmi.server import ActionResult, HmiServer
from smartcell.hmi.view import ACTIONS, CellView, parse_step, parse_verdict, scale_problem
from smartcell.nodes.common import LATCHED_QOS, declare_config, guarded, run_node, steady_clock

if TYPE_CHECKING:      # asyncua loads only when a users file is given
    from smartcell.io.opcua import OpcUaUser

# The page is a display: the newest verdict matters, a lost one does not (and a slow browser must never
# hold back the supervisor's reliable stream).
DISPLAY_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE)
RECORD_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
TICK_S = 0.05          # steady-clock period that carries actions to ROS and pushes changes to browsers


@dataclass
class _Pending:
    name: str
    session: Session
    result: concurrent.futures.Future
    started_s: float                  # steady clock
    call: Future | None = None        # the rclpy future of a service call


class Hmi(Node):
    """Serves the operator station: a web page (aiohttp, WebSocket push) for the person in the cell.

    Subscribes: `cell/state` (std_msgs/String, latched); `operator/current_step`, `operator/next_step`
    (std_msgs/String JSON, latched); `safety/verdict` (diagnostic_msgs/DiagnosticArray, best effort:
    the display takes the newest); `speed_scale`, `operator/fatigue` (std_msgs/Float64 in [0, 1], latched).
    Calls (std_srvs/Trigger): `operator/step_done`, `cell/pause`, `cell/resume` for the buttons.
    Publishes: `operator/help_request` (std_msgs/String JSON {cell_id, user, station, step, unit,
    time_utc, stamp_s}) for the help button; `hmi/actions` (std_msgs/String JSON, one record per action:
    cell_id, user, role, action, ok, message, time_utc, stamp_s, duration_ms).
    Every action needs an operator login (users_file); each is logged (node log, `hmi/actions`,
    action_log). The URL is logged at start (`port` 0 picks a free port).
    Parameters: smartcell.core.node_params.HMI.
    """

    def __init__(self) -> None:
        super().__init__('hmi')
        c = self._config = declare_config_checked(self)
        users: tuple[OpcUaUser, ...] = ()
        if c.users_file:
            from smartcell.io.opcua import load_users
            try:
                users = load_users(c.users_file)
            except (OSError, ValueError) as exc:
                raise ConfigError(f'hmi.users_file: {exc}') from exc
        ssl_context = _ssl_context(c)
        if users and ssl_context is None and not _loopback(c.host):
            raise ConfigError(f'hmi: host {c.host!r} is reachable from other machines and a users file is set: '
                              'passwords would cross the network in the clear; set tls_cert_file and tls_key_file '
                              'or listen on 127.0.0.1')
        from smartcell.io.opcua import check_password
        steady = steady_clock()
        self._steady_s = lambda: steady.now().nanoseconds * 1e-9
        self._sessions = Sessions(users, check_password, self._steady_s, c.session_timeout_s)
        self._view = CellView(c.cell_id)
        self._pushed_version = -1
        self._requests: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._pending: list[_Pending] = []
        self._action_log = Path(c.action_log) if c.action_log else None

        # Every callback guarded: an unexpected error is logged and shown, never the end of the station.
        self.create_subscription(String, 'cell/state', guarded(self._on_state, self._on_error), LATCHED_QOS)
        for key in ('current_step', 'next_step'):
            self.create_subscription(String, f'operator/{key}', guarded(
                lambda msg, key=key: self._on_step(key, msg), self._on_error), LATCHED_QOS)
        self.create_subscription(DiagnosticArray, 'safety/verdict', guarded(self._on_verdict, self._on_error),
                                 DISPLAY_QOS)
        self.create_subscription(Float64, 'speed_scale', guarded(
            lambda msg: self._on_fraction('speed_scale', msg), self._on_error), LATCHED_QOS)
        self.create_subscription(Float64, 'operator/fatigue', guarded(
            lambda msg: self._on_fraction('fatigue', msg), self._on_error), LATCHED_QOS)
        self._action_clients = {a.name: self.create_client(Trigger, a.service) for a in ACTIONS.values() if a.service}
        self._action_topics = {a.name: self.create_publisher(String, a.topic, 10) for a in ACTIONS.values() if a.topic}
        self._records = self.create_publisher(String, 'hmi/actions', RECORD_QOS)
        self.create_timer(TICK_S, guarded(self._tick, self._on_error), clock=steady)

        self._server = HmiServer(self._sessions, self._request, action_timeout_s=c.action_timeout_s + 1.0,
                                 push_period_s=c.push_period_s)
        try:
            port = self._server.start(c.host, c.port, ssl_context)
        except OSError as exc:
            raise ConfigError(f'hmi: cannot listen on {c.host}:{c.port}: {exc}') from exc
        scheme = 'https' if ssl_context else 'http'
        host = c.host if c.host not in ('0.0.0.0', '::') else '<this machine>'
        self.url = f'{scheme}://{host}:{port}/'
        logins = f'{len(users)} user(s) from {c.users_file}' if users else 'view only (no users_file)'
        self.get_logger().info(f'operator station at {self.url} ({logins})')

    # -- inputs: store, the tick pushes -------------------------------------------------------------
    def _on_state(self, msg: String) -> None:
        self._view.set('cell_state', msg.data)

    def _on_step(self, key: str, msg: String) -> None:
        fields, problem = parse_step(msg.data)
        self._view.set(key, fields, problem)

    def _on_verdict(self, msg: DiagnosticArray) -> None:
        fields, problem = parse_verdict((s.name, ((kv.key, kv.value) for kv in s.values)) for s in msg.status)
        self._view.set('verdict', fields, problem)

    def _on_fraction(self, key: str, msg: Float64) -> None:
        self._view.set(key, float(msg.data), scale_problem(msg.data))

    # -- actions: the web thread queues them, the node's thread carries them out ---------------------
    def _request(self, name: str, session: Session) -> concurrent.futures.Future:
        result: concurrent.futures.Future = concurrent.futures.Future()
        self._requests.put(_Pending(name, session, result, self._steady_s()))
        return result

    def _tick(self) -> None:
        while True:
            try:
                self._start(self._requests.get_nowait())
            except queue.Empty:
                break
        now = self._steady_s()
        for pending in list(self._pending):
            action = ACTIONS[pending.name]
            call = pending.call
            if call is None and self._action_clients[pending.name].service_is_ready():
                pending.call = self._action_clients[pending.name].call_async(Trigger.Request())
            elif call is not None and call.done():
                self._pending.remove(pending)
                try:
                    response = call.result()
                    self._finish(pending, ActionResult(bool(response.success), response.message))
                except Exception as exc:  # noqa: BLE001 - a failed call is a refused action, named
                    self._finish(pending, ActionResult(False, f'service call failed: {exc!r}'))
            elif now - pending.started_s > self._config.action_timeout_s:
                self._pending.remove(pending)
                self._finish(pending, ActionResult(False, (
                    f'{action.service} is not available (is the supervisor running?)' if call is None else
                    f'{action.service} did not answer within {self._config.action_timeout_s:g} s')))
        if self._view.version != self._pushed_version:
            self._pushed_version = self._view.version
            self._server.publish(self._view.snapshot())

    def _start(self, pending: _Pending) -> None:
        action = ACTIONS[pending.name]
        if action.topic:
            step = self._view.snapshot()['current_step']
            self._action_topics[action.name].publish(String(data=json.dumps({
                'cell_id': self._config.cell_id, 'user': pending.session.user, 'station': step.get('station', ''),
                'step': step.get('step', ''), 'unit': step.get('unit'), 'time_utc': _utc_now(),
                'stamp_s': self._now_s()})))
            self._finish(pending, ActionResult(True, f'help requested on {action.topic}'))
            return
        client = self._action_clients[action.name]
        if client.service_is_ready():
            pending.call = client.call_async(Trigger.Request())
        self._pending.append(pending)        # not discovered yet: called once it is, until action_timeout_s

    def _finish(self, pending: _Pending, result: ActionResult) -> None:
        record = {'cell_id': self._config.cell_id, 'user': pending.session.user, 'role': pending.session.role,
                  'action': pending.name, 'ok': result.ok, 'message': result.message, 'time_utc': _utc_now(),
                  'stamp_s': self._now_s(), 'duration_ms': round((self._steady_s() - pending.started_s) * 1e3, 1)}
        log = self.get_logger().info if result.ok else self.get_logger().warning
        log(f'operator action {pending.name!r} by {pending.session.user!r}: '
            f'{"done" if result.ok else "refused"}: {result.message}')
        self._records.publish(String(data=json.dumps(record)))
        if self._action_log is not None:
            try:
                self._action_log.parent.mkdir(parents=True, exist_ok=True)
                with open(self._action_log, 'a', encoding='utf-8') as handle:
                    handle.write(json.dumps(record) + '\n')
            except OSError as exc:
                self.get_logger().error(f'action_log {self._action_log}: {exc}')
        self._view.set('last_action', {k: record[k] for k in ('user', 'action', 'ok', 'message', 'time_utc')})
        pending.result.set_result(result)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_error(self, where: str, exc: BaseException) -> None:
        self.get_logger().error(f'{where}: {exc!r}')
        self._view.set('station', None, f'internal error in {where}: {exc!r}')

    def on_shutdown(self) -> None:
        self._server.stop()


def declare_config_checked(node: Node) -> Any:
    """The HMI's frozen config (smartcell.core.node_params.HMI), with the checks across its fields."""
    config = declare_config(node, HMI)
    if bool(config.tls_cert_file) != bool(config.tls_key_file):
        raise ConfigError('hmi: tls_cert_file and tls_key_file go together (both set or both empty)')
    return config


def _ssl_context(config: Any) -> ssl.SSLContext | None:
    if not config.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f'hmi: cannot load tls_cert_file/tls_key_file: {exc}') from exc
    return context


def _loopback(host: str) -> bool:
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec='milliseconds')


def main(args=None) -> int:
    return run_node(lambda: Hmi(), args)


if __name__ == '__main__':
    raise SystemExit(main())
