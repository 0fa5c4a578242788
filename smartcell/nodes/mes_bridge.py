"""MES bridge node: cell topics -> ISA-95 records -> outbox on disk -> MQTT and OPC UA; job orders in."""
from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections import deque
from typing import Any, Mapping, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.srv import AddDiagnostics
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String, UInt64
from std_srvs.srv import Trigger

from smartcell.core.mes.records import (
    JOB_COMMANDS, Alarm, FillAlarm, JobOrder, JobResponse, JobState, JobTracker, OrderRejected,
    Record, Stream, body_from_dict, make_record, order_to_json, parse_orders, records_from_event, service_for,
    telemetry_record, validate_order)
from smartcell.core.mes.params import (MES_BRIDGE, MesBridgeConfig, bridge_config, endpoint_host, endpoint_port,
                                       port_taken_message)
from smartcell.core.mes.oee import compute_oee, job_window, safety_summary, state_before
from smartcell.core.mes.event_gate import EventGate, Refusal
from smartcell.core.mes.sequence import EventSequencer
from smartcell.core.params import ConfigError
from smartcell.core.safety.authority import CellKeyError, load_or_create_cell_key
from smartcell.core.safety.graph import publisher_doubt
from smartcell.io.broker import port_taken
from smartcell.share import share_file
from smartcell.io.mqtt import MqttSettings, MqttTopics, MqttTransport, order_answer
from smartcell.io.opcua import (AXES, EMERGENCY_STOP, OPERATIONAL_MODE, PROTECTIVE_STOP, SPEED_OVERRIDE, OpcUaServer,
                                OpcUaSettings, axis_path, load_users)
from smartcell.io.outbox import AppendResult, Dispatcher, Outbox, OutboxConfig, OutboxWriter, Pending, Transport
from smartcell.nodes.common import (LATCHED_QOS, LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, STREAM_QOS, diagnostic_array,
                                    diagnostic_status, declare_parameters, run_node)

EVENTS_QOS = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
# Orders stay available to a supervisor that (re)joins later: transient-local with a deep history.
ORDERS_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The bridge asks the supervisor to replay journaled events after the last seq it has. Latched
# (transient-local, depth 1): a supervisor that starts (or restarts) after the request still gets it.
REPLAY_REQUEST_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
MAX_EVENTS_KEPT = 100_000        # cell events kept in memory for OEE (about a shift at 1 event/s)
REPLAY_POLL_S = 2.0              # steady s: the request is repeated this often (idle cell, lost request)
HOLE_REQUEST_S = 0.5             # steady s: a hole in seq is asked for at most this often
ENERGY_WAIT_S = 2.0              # steady s: a unit record waits at most this long for its metered energy
REFUSAL_HOLD_S = 10.0            # steady s: /diagnostics stays ERROR this long after a refused cell event
EVENT_TOPICS = ('cell/events', 'cell/events/replay')


class OpcUaRecordSink:
    """Outbox transport that shows records on the OPC UA server (job counts, state, alarm events)."""

    name = 'opcua'

    def __init__(self, server: OpcUaServer) -> None:
        self._server = server

    def send(self, items: Sequence[Pending]) -> int:
        for item in items:
            record = item.record()
            body = record.body
            if record.kind == 'JobResponse' and body['state'] != JobState.REJECTED.value:
                # a rejected order never became the current job; it is answered on its own channel
                self._server.set_values({'Job/OrderId': body['order_id'], 'Job/State': body['state'],
                                         'Job/WorkMaster': body['work_master'], 'Job/Quantity': body['quantity'],
                                         'Job/Produced': body['produced'], 'Job/Good': body['good'],
                                         'Job/Scrap': body['scrap']})
            elif record.kind == 'Alarm':
                self._server.emit_alarm(body['code'], body['severity'], body['text'])
            elif record.kind == 'EquipmentState' and body['mode']:
                self._server.set_values({'Mode': body['mode']})
            elif record.kind in ('OeeResult', 'ShiftOee'):
                self._server.set_values({'OEE/Availability': body['availability'],
                                         'OEE/Performance': body['performance'], 'OEE/Quality': body['quality'],
                                         'OEE/OEE': body['oee'],
                                         'OEE/PerformanceOver100': body['performance_over_100']})
        return len(items)


class MesBridge(Node):
    """Bridge between the cell and the MES.

    Subscribes: cell/state (String, latched), cell/events and cell/events/replay (String JSON, reliable:
      sealed only when signed with the cell key by the supervisor, each seq once; core.mes.event_gate),
      speed_scale (Float64, latched), joint_states (JointState: rad), safety/verdict (DiagnosticArray),
      energy/report (String JSON).
    Publishes: mes/job_order (String JSON JobOrder, reliable transient-local depth 100), /diagnostics
      (status 'smartcell/mes_bridge': link up/down and backlog per transport, outbox fill %; ERROR naming
      refused cell events and any publisher of cell/events other than `events_publisher`).
    Calls: cell/start, cell/pause, cell/resume, cell/stop (std_srvs/Trigger) for OPC UA job control.
    External: MQTT <topic_prefix>/<cell_id>/... (docs/mes.md), OPC UA server at opcua_endpoint.
    Parameters: smartcell.core.mes.params.MES_BRIDGE (db path, MQTT host/port/TLS/credentials, OPC UA
      endpoint/security/users, cell id, topic prefix, work masters with ideal cycle times in s, periods in s).
    """

    def __init__(self) -> None:
        super().__init__('mes_bridge')
        self.cfg: MesBridgeConfig = bridge_config(declare_parameters(self, MES_BRIDGE),
                                                  namespace=self.get_namespace())
        cfg = self.cfg
        self._orders_text = self._read_orders_file(cfg.orders_file)   # a bad file fails before any server starts
        try:
            self._gate = EventGate(load_or_create_cell_key(cfg.cell_key_file))
        except CellKeyError as exc:
            raise ConfigError(f'mes_bridge.cell_key_file: {exc}') from exc
        self._refused_at = -math.inf                     # steady s of the newest refused cell event
        self._lock = threading.Lock()            # tracker and events: touched by ROS, MQTT and OPC UA threads
        self._tracker = JobTracker()
        self._events: list[dict[str, Any]] = []
        self._energy: dict[str, Any] | None = None
        self._joints: tuple[float, ...] = ()
        self._fill_alarm_active = False
        self._shift_start_s: float | None = None     # node-clock start of the current shift
        self._state_at_shift_start = 'idle'
        self._alarm_rule = FillAlarm()
        self._ready: deque[Mapping[str, Any]] = deque()   # events in seq order, not yet turned into records
        self._energy_by_unit: dict[int, dict[str, Any]] = {}    # metered cycles not yet matched to a unit
        self._energy_stamp_s = -math.inf                 # newest energy report's stamp (cell time, s)
        self._waiting_since: float | None = None         # steady s: the head unit record waits for energy
        self._last_hole_request = -math.inf

        self._opcua = self._make_opcua(cfg) if cfg.opcua_enabled else None
        self._mqtt = (MqttTransport(MqttSettings(
            host=cfg.mqtt_host, port=cfg.mqtt_port, keepalive_s=cfg.mqtt_keepalive_s, tls=cfg.mqtt_tls,
            ca_file=cfg.mqtt_ca_file, cert_file=cfg.mqtt_cert_file, key_file=cfg.mqtt_key_file,
            username=cfg.mqtt_username, password=cfg.mqtt_password, reconnect_max_s=cfg.backoff_max_s,
            client_id=cfg.mqtt_client_id),
            MqttTopics(cfg.topic_prefix, cfg.cell_id), on_order=self._on_mqtt_order,
            on_command=self._on_mqtt_command) if cfg.mqtt_enabled else None)
        sink = OpcUaRecordSink(self._opcua) if self._opcua else None
        transports: list[Transport] = [t for t in (self._mqtt, sink) if t]
        self._outbox = Outbox(cfg.db_path, [t.name for t in transports], OutboxConfig(
            capacity_records=cfg.outbox_capacity_records, synchronous=cfg.outbox_synchronous,
            backoff_initial_s=cfg.backoff_initial_s, backoff_max_s=cfg.backoff_max_s))
        self._dispatcher = Dispatcher(self._outbox, transports)
        self._outbox.on_append = self._dispatcher.wake
        self._writer = OutboxWriter(self._outbox, on_result=self._on_append_result)
        self._restore_jobs()
        # where the journal replay resumes: the newest event whose records are in the outbox
        self._sequencer = EventSequencer(last_seq=self._outbox.event_seq())

        self._orders_pub = self.create_publisher(String, 'mes/job_order', ORDERS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._supervisor_clients = {name: self.create_client(Trigger, name) for name in
                          ('cell/start', 'cell/pause', 'cell/resume', 'cell/stop')}
        self._cancel_client = self.create_client(AddDiagnostics, 'cell/cancel_order')
        self._cell_state = ''
        self.create_subscription(String, 'cell/state', self._on_state, LATCHED_QOS)
        self.create_subscription(String, 'cell/events', functools.partial(self._on_event, live=True), EVENTS_QOS)
        self.create_subscription(String, 'cell/events/replay', functools.partial(self._on_event, live=False),
                                 EVENTS_QOS)
        self._replay_pub = self.create_publisher(UInt64, 'cell/events/replay_request', REPLAY_REQUEST_QOS)
        self.create_subscription(Float64, 'speed_scale', self._on_speed_scale, LATCHED_QOS)
        self.create_subscription(JointState, 'joint_states', self._on_joints, STREAM_QOS)
        self.create_subscription(DiagnosticArray, 'safety/verdict', self._on_verdict, STREAM_QOS)
        self.create_subscription(String, 'energy/report', self._on_energy, STREAM_QOS)
        self.create_timer(cfg.telemetry_period_s, self._on_telemetry_tick)
        self.create_timer(cfg.diagnostics_period_s, self._on_diagnostics_tick)
        # steady clock: the catch-up must go on when sim time stops (the end of a run)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(REPLAY_POLL_S, self._request_replay, clock=steady)
        self.create_timer(0.1, self._drain, clock=steady)

        self._writer.start()
        self._dispatcher.start()
        if self._mqtt:
            self._mqtt.start()
        self._load_orders_file(cfg.orders_file)
        self._request_replay()       # whatever the cell did while this bridge was away
        self.get_logger().info(f'mes_bridge up: outbox {cfg.db_path} (cell events after seq '
                               f'{self._sequencer.last_seq} asked for), MQTT '
                               f'{cfg.mqtt_host}:{cfg.mqtt_port if cfg.mqtt_enabled else "off"}, OPC UA '
                               f'{cfg.opcua_endpoint if cfg.opcua_enabled else "off"}')

    def _make_opcua(self, cfg: MesBridgeConfig) -> OpcUaServer:
        taken = port_taken(endpoint_host(cfg.opcua_endpoint), endpoint_port(cfg.opcua_endpoint))
        if taken:
            raise ConfigError(port_taken_message(cfg.opcua_endpoint, taken))
        try:
            users = load_users(cfg.opcua_users_file) if cfg.opcua_users_file else ()
            cert, key = cfg.opcua_cert_file, cfg.opcua_key_file
            if cfg.opcua_security != 'none' and not cert:
                from smartcell.io.opcua import generate_self_signed
                cert = str(cfg.db_path.parent / f'opcua_{cfg.cell_id}.der')
                key = str(cfg.db_path.parent / f'opcua_{cfg.cell_id}.pem')
                cfg.db_path.parent.mkdir(parents=True, exist_ok=True)
                generate_self_signed(cert, key, 'urn:smartcell:mes_bridge')
            settings = OpcUaSettings(endpoint=cfg.opcua_endpoint, cell_id=cfg.cell_id, security=cfg.opcua_security,
                                     cert_file=cert, key_file=key, users=users, anonymous=cfg.opcua_anonymous,
                                     trusted_client_certs_dir=cfg.opcua_trusted_certs_dir)
        except (OSError, ValueError) as exc:
            raise ConfigError(f'mes_bridge OPC UA settings: {exc}') from exc
        try:
            return OpcUaServer(settings, self._on_job_command).start()
        except RuntimeError as exc:
            raise ConfigError(f'mes_bridge.opcua_endpoint {cfg.opcua_endpoint!r}: {exc}') from exc

    def _restore_jobs(self) -> None:
        """Orders taken in and job responses sent before a restart, from the outbox: duplicates stay
        refused and job counts go on where they were."""
        for data in self._outbox.audit_records():
            if isinstance(data, Exception):   # an unreadable row: nothing to restore from it
                continue
            try:
                body = body_from_dict(data['kind'], data['body'])
            except (KeyError, TypeError, ValueError):
                continue
            if isinstance(body, JobOrder):
                self._tracker.remember(body)
            elif isinstance(body, JobResponse) and body.order_id:
                self._tracker.responses[body.order_id] = body
                if body.state == JobState.RUNNING.value:
                    self._tracker.current_order_id = body.order_id

    # ------------------------------------------------------------ records out

    def _store(self, records: list[Record]) -> None:
        self._writer.submit(records)

    def _on_append_result(self, result: AppendResult) -> None:
        if result.refused:
            self.get_logger().warning('outbox full of production/safety records: telemetry sample refused',
                                      throttle_duration_sec=10.0)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------ subscriptions (convert, call, publish)

    def _on_state(self, msg: String) -> None:
        state = msg.data.strip().lower()
        self._cell_state = state
        if self._opcua:
            self._opcua.set_values({'State': state, EMERGENCY_STOP: state == 'emergency_stop',
                                    PROTECTIVE_STOP: state == 'protective_stop'})
        # the retained MQTT state is the newest EquipmentState record the outbox delivers (from the
        # journaled state_change events), not this topic: it has the record's seq and hash

    def _on_event(self, msg: String, live: bool) -> None:
        """cell/events (`live`) and cell/events/replay: every event the supervisor signed once, in seq order
        (EventGate, then EventSequencer)."""
        try:
            event = json.loads(msg.data)
            if not isinstance(event, dict) or 'type' not in event:
                raise ValueError('not an object with a type')
        except ValueError as exc:
            self._refuse_event(self._gate.malformed(f'not a JSON event: {exc}: {msg.data[:120]!r}'), live)
            return
        refusal = self._gate.check(event, live, self._sequencer.last_seq)
        if refusal is not None:
            self._refuse_event(refusal, live)
            return
        unnumbered = self._sequencer.unnumbered
        self._ready.extend(self._sequencer.offer(event))
        if self._sequencer.unnumbered > unnumbered:
            self.get_logger().error(f'cell/events message ignored, no valid seq: {msg.data[:120]!r}',
                                    throttle_duration_sec=10.0)
        if self._sequencer.hole is not None:
            self._request_hole()
        self._drain()

    def _refuse_event(self, refusal: Refusal, live: bool) -> None:
        """Never sealed; counted, logged and named on /diagnostics (ERROR for REFUSAL_HOLD_S)."""
        self._refused_at = time.monotonic()
        topic = EVENT_TOPICS[0] if live else EVENT_TOPICS[1]
        self.get_logger().error(f'{topic} message refused, not sealed ({refusal.kind}): {refusal.reason}',
                                throttle_duration_sec=1.0)

    def _event_publisher_doubts(self) -> list[str]:
        """Who else publishes the cell's events (core.safety.graph.publisher_doubt), per topic."""
        doubts = []
        for topic in EVENT_TOPICS:
            infos = self.get_publishers_info_by_topic(self.resolve_topic_name(topic))
            doubt = publisher_doubt(topic, ((i.node_name, i.node_namespace) for i in infos),
                                    self.cfg.events_publisher, self.get_namespace())
            if doubt:
                doubts.append(doubt)
        return doubts

    def _request_replay(self) -> None:
        """Ask the supervisor for the journaled events after the newest one handled here."""
        self._replay_pub.publish(UInt64(data=self._sequencer.last_seq))

    def _request_hole(self) -> None:
        now = time.monotonic()
        if now - self._last_hole_request >= HOLE_REQUEST_S:
            hole = self._sequencer.hole
            if hole is None:   # filled since the caller looked
                return
            self._last_hole_request = now
            first, held = hole
            self.get_logger().warning(f'cell/events seq {first}..{held - 1} missed: asking the supervisor to '
                                      'replay them from its journal', throttle_duration_sec=5.0)
            self._request_replay()

    def _drain(self) -> None:
        """Turn ready events into records, in order; a unit waits (bounded) for its metered energy."""
        while self._ready:
            event = self._ready[0]
            energy = None
            if event.get('type') == 'unit_complete':
                energy = self._energy_for(event)
                if energy is None and self._energy_expected(event):
                    return
            self._ready.popleft()
            self._waiting_since = None
            self._handle_event(event, energy)

    def _handle_event(self, event: Mapping[str, Any], energy: dict[str, Any] | None) -> None:
        with self._lock:
            records = records_from_event(event, self.cfg.cell_id, self._tracker, energy)
            self._events.append(dict(event))
            del self._events[:-MAX_EVENTS_KEPT]
            if event.get('type') == 'job_complete':
                records += self._job_summary(event)
        # the records and the event's seq are stored in one transaction: a restart resumes after it
        self._writer.submit(records, event_seq=int(event['seq']))

    def _energy_for(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The metered energy of this unit (the meter closes a cycle on each unit_complete it sees)."""
        unit = event.get('unit')
        return self._energy_by_unit.pop(unit, None) if isinstance(unit, int) else None

    def _energy_expected(self, event: Mapping[str, Any]) -> bool:
        """Wait for the meter's report of this unit? Only while a meter reports, has not reported past the
        unit's time yet, and for at most ENERGY_WAIT_S (a replayed old unit is not waited for)."""
        if float(event.get('stamp', 0.0)) < self._energy_stamp_s:
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since < ENERGY_WAIT_S and math.isfinite(self._energy_stamp_s)

    def _job_summary(self, event: Mapping[str, Any]) -> list[Record]:
        """Safety summary and OEE of the job that just completed (called with the lock held)."""
        order_id = str(event.get('order_id', ''))
        response = self._tracker.responses.get(order_id)
        ideal = self.cfg.ideal_cycle_s.get(response.work_master if response else '')
        try:
            start, end = job_window(self._events, order_id)
            # the time split between states does not depend on the ideal cycle time; 1 s stands in
            # when the work master is unknown, and then no OEE is reported
            result = compute_oee(self._events, start, end, ideal or 1.0, order_id=order_id,
                                 initial_state=state_before(self._events, start))
        except ValueError as exc:
            self.get_logger().warning(f'no job summary for {order_id!r}: {exc}')
            return []
        summary = safety_summary(self._events, result, order_id)
        source = str(event.get('event_id') or '')
        records = [make_record(summary, self.cfg.cell_id, end, source_id=source or None)]
        if ideal is None:
            self.get_logger().warning(f'no OEE for job {order_id!r}: its work master is unknown to the bridge')
        else:
            records.append(telemetry_record(self.cfg.cell_id, end, 'OeeResult',
                                            {'order_id': order_id, **result.to_dict()}, stream=Stream.OEE))
        return records

    def _on_speed_scale(self, msg: Float64) -> None:
        if self._opcua:
            self._opcua.set_values({SPEED_OVERRIDE: float(msg.data)})

    def _on_joints(self, msg: JointState) -> None:
        self._joints = tuple(float(q) for q in msg.position[:AXES])

    def _on_verdict(self, msg: DiagnosticArray) -> None:
        if not self._opcua or not msg.status:
            return
        values = {kv.key: kv.value for kv in msg.status[0].values}
        if 'mode' in values:
            self._opcua.set_values({OPERATIONAL_MODE: values['mode']})

    def _on_energy(self, msg: String) -> None:
        try:
            report = json.loads(msg.data)
            if not isinstance(report, dict):
                raise ValueError('not an object')
        except ValueError:
            self.get_logger().warning('energy/report is not a JSON object; energy left unmetered',
                                      throttle_duration_sec=10.0)
            return
        last = report.get('last_cycle')
        if isinstance(last, dict) and isinstance(last.get('unit'), int):
            self._energy_by_unit[last['unit']] = {'energy_j': last.get('energy_j'), 'co2e_g': last.get('co2e_g')}
            while len(self._energy_by_unit) > 100:       # unmatched (units of a run this bridge did not see)
                del self._energy_by_unit[next(iter(self._energy_by_unit))]
        stamp = report.get('stamp')
        if isinstance(stamp, (int, float)) and math.isfinite(stamp):
            self._energy_stamp_s = max(self._energy_stamp_s, float(stamp))
        with self._lock:
            self._energy = report
        self._drain()

    def _on_telemetry_tick(self) -> None:
        self._check_shift_end()
        joints = self._joints
        if not joints:
            return
        if self._opcua:
            self._opcua.set_values({axis_path(i + 1): q for i, q in enumerate(joints)})
        self._store([telemetry_record(self.cfg.cell_id, self._now_s(), 'AxisPositions',
                                      {'position_rad': list(joints)})])

    def _check_shift_end(self) -> None:
        now = self._now_s()
        length = self.cfg.shift_length_s
        start = (now // length) * length
        if self._shift_start_s is None:
            # the first shift is counted from when the bridge started seeing events, not before
            self._shift_start_s = now
            return
        if start <= self._shift_start_s:
            return
        with self._lock:
            records = self._shift_summary(self._shift_start_s, start)
            self._state_at_shift_start = state_before(self._events, start, self._state_at_shift_start)
            # memory stays bounded: events before the new shift are no longer needed (jobs in
            # progress keep theirs, so a job's OEE still covers its whole run)
            open_jobs = {o for o, r in self._tracker.responses.items() if r.state == JobState.RUNNING.value}
            self._events = [e for e in self._events if float(e.get('stamp', 0.0)) >= start
                            or e.get('order_id') in open_jobs]
        self._shift_start_s = start
        self._store(records)

    def _shift_summary(self, start: float, end: float) -> list[Record]:
        """OEE and safety summary of a finished shift (called with the lock held)."""
        orders = {str(e.get('order_id', '')) for e in self._events if e.get('type') == 'unit_complete'
                  and start < float(e.get('stamp', 0.0)) <= end}
        ideal = {}
        for order_id in orders:
            order = self._tracker.orders.get(order_id)
            cycle = self.cfg.ideal_cycle_s.get(order.work_master) if order else None
            if cycle is not None:
                ideal[order_id] = cycle
        try:
            # an order without a known work master raises here, naming it: no guessed OEE
            result = compute_oee(self._events, start, end, ideal, initial_state=self._state_at_shift_start)
        except ValueError as exc:
            self.get_logger().warning(f'no shift OEE for [{start:.0f}, {end:.0f}) s: {exc}')
            return []
        summary = safety_summary(self._events, result)
        source = f'shift/{start:.3f}'
        return [make_record(summary, self.cfg.cell_id, end, source_id=source),
                telemetry_record(self.cfg.cell_id, end, 'ShiftOee', result.to_dict(), stream=Stream.OEE)]

    def _on_diagnostics_tick(self) -> None:
        fill = self._outbox.fill_fraction()
        active = self._alarm_rule.next_state(self._fill_alarm_active, fill)
        if active != self._fill_alarm_active:
            self._fill_alarm_active = active
            text = f'outbox {fill:.0%} full' if active else f'outbox back to {fill:.0%}'
            self._store([make_record(Alarm(code='OUTBOX_FULL', severity='warning', text=text, active=active),
                                     self.cfg.cell_id, self._now_s())])
        hole = self._sequencer.hole
        values: dict[str, object] = {'outbox_fill_percent': 100.0 * fill, 'db_path': str(self.cfg.db_path),
                                     'writer_queue_records': self._writer.queued(),
                                     'cell_event_seq': self._sequencer.last_seq,
                                     'cell_events_missing': f'{hole[0]}..{hole[1] - 1}' if hole else 'none',
                                     'cell_events_repeated': self._sequencer.repeats}
        level = LEVEL_OK
        problems: list[str] = []
        for name, link in self._dispatcher.links.items():
            values[f'{name}_link'] = 'up' if link.up else 'down'
            values[f'{name}_backlog_records'] = self._outbox.backlog(name)
            values[f'{name}_delivered_records'] = link.delivered
            if not link.up:
                level, problems = LEVEL_WARN, problems + [f'{name} down: {link.last_error}']
        if self._mqtt:
            values['mqtt_connected'] = self._mqtt.connected
            if self._opcua:
                self._opcua.set_values({'Links/MqttConnected': self._mqtt.connected,
                                        'Links/OutboxBacklog': self._outbox.backlog()})
        if hole:
            level, problems = max(level, LEVEL_WARN), problems + [
                f'cell events {hole[0]}..{hole[1] - 1} missing: replay asked from the supervisor']
        if self._writer.last_error:
            level, problems = LEVEL_ERROR, problems + [self._writer.last_error]
        values['cell_events_refused'] = self._gate.refused
        for kind, count in sorted(self._gate.counts.items()):
            values[f'cell_events_refused_{kind}'] = count
        if self._gate.last is not None:
            values['cell_events_last_refused'] = f'{self._gate.last.kind}: {self._gate.last.reason}'
        if time.monotonic() - self._refused_at < REFUSAL_HOLD_S and self._gate.last is not None:
            level, problems = LEVEL_ERROR, problems + [
                f'{self._gate.refused} cell event(s) refused, not sealed (last: {self._gate.last.kind}: '
                f'{self._gate.last.reason})']
        doubts = self._event_publisher_doubts()
        values['cell_events_publishers'] = '; '.join(doubts) or 'ok'
        if doubts:
            level, problems = LEVEL_ERROR, problems + doubts
        if active:
            level, problems = max(level, LEVEL_WARN), problems + [f'outbox {fill:.0%} full']
        status = diagnostic_status('smartcell/mes_bridge', self.cfg.cell_id, level,
                                   '; '.join(problems) or 'all links up', values)
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    # ------------------------------------------------------------ job intake (file, MQTT, OPC UA)

    @staticmethod
    def _read_orders_file(orders_file: str) -> str:
        if not orders_file:
            return ''
        try:
            # 'example': the shipped config/job_orders.yaml, whose products are the shipped cell's
            path = share_file('config', 'job_orders.yaml') if orders_file == 'example' else orders_file
            return open(path, encoding='utf-8').read()
        except OSError as exc:
            raise ConfigError(f'mes_bridge.orders_file {orders_file!r} cannot be read: {exc}') from exc

    def _load_orders_file(self, orders_file: str) -> None:
        if not orders_file:
            return
        for item in parse_orders(self._orders_text, self.cfg.work_masters):
            if isinstance(item, OrderRejected):
                self.get_logger().error(f'orders file {orders_file}: {item.reason}')
                self._record_rejection(item)
            else:
                self._accept(item)

    def intake(self, raw: Any) -> tuple[bool, str, str]:
        """Validate an order from any channel: (accepted, order_id, reason). Valid orders are stored and queued."""
        try:
            order = validate_order(raw, self.cfg.work_masters)
        except OrderRejected as exc:
            self._record_rejection(exc)
            return False, exc.order_id, exc.reason
        with self._lock:
            known = order.order_id in self._tracker.orders
        if known:
            # answered on its channel only: a JobResponse 'rejected' would flip the live order's state
            return False, order.order_id, f'order_id {order.order_id!r} was received already'
        self._accept(order)
        return True, order.order_id, ''

    def _accept(self, order: JobOrder) -> None:
        with self._lock:
            self._tracker.remember(order)
        self._store([make_record(order, self.cfg.cell_id, self._now_s(), source_id=f'order/{order.order_id}')])
        self._orders_pub.publish(String(data=order_to_json(order)))

    def _record_rejection(self, exc: OrderRejected) -> None:
        response = JobResponse(order_id=exc.order_id, state=JobState.REJECTED.value, reason=exc.reason)
        self._store([make_record(response, self.cfg.cell_id, self._now_s())])

    def _on_mqtt_order(self, payload: bytes) -> None:
        """paho thread: validate and answer on orders/accepted or orders/rejected, naming the order."""
        accepted, order_id, reason = self.intake(payload)
        if self._mqtt is None:   # registered only as the MQTT transport's callback
            return
        self._mqtt.answer_order(order_answer(payload, order_id, '' if accepted else reason))

    def _on_mqtt_command(self, payload: bytes) -> None:
        """paho thread: a job-control command; answered on orders/command/answer from a worker thread
        (the answer may wait for the supervisor; paho's network loop must not)."""
        mqtt = self._mqtt
        if mqtt is None:   # registered only as the MQTT transport's callback
            return
        try:
            data = json.loads(payload)
            if not isinstance(data, dict) or not isinstance(data.get('command'), str):
                raise ValueError('a command is a JSON object with a string "command"')
            command = data['command']
            argument = json.dumps(data.get('order')) if command in ('Store', 'StoreAndStart') \
                else str(data.get('order_id', ''))
        except ValueError as exc:
            answer = {'command': '', 'order_id': '', 'ok': False,
                      'message': f'unreadable command: {exc}; received {payload[:80]!r}'}
            mqtt.answer_command(answer)
            return

        def run() -> None:
            ok, message = self._on_job_command(command, argument)
            order = data.get('order')
            order_id = data.get('order_id') or (order.get('order_id') if isinstance(order, dict) else '')
            mqtt.answer_command({'command': command, 'order_id': str(order_id or ''), 'ok': ok,
                                 'message': message})
        threading.Thread(target=run, name='mqtt-command', daemon=True).start()

    def _on_job_command(self, command: str, argument: str) -> tuple[bool, str]:
        """OPC UA or MQTT worker thread: ISA-95 job control over the cell's order queue."""
        if command not in JOB_COMMANDS:
            return False, f'unknown command {command!r}; accepted: {", ".join(JOB_COMMANDS)}'
        if command == 'Store':
            accepted, order_id, reason = self.intake(argument)
            if not accepted:
                return False, reason
            answered = self._wait_for_cell(order_id)
            if answered is None:
                return True, f'order {order_id} stored; the cell has not confirmed it yet'
            return answered.state == JobState.WAITING.value, (
                f'order {order_id} stored and queued' if answered.state == JobState.WAITING.value
                else f'order {order_id} refused by the cell: {answered.reason}')
        if command == 'StoreAndStart':
            return self._store_and_start(argument)
        if command == 'GetJobResponse':
            with self._lock:
                response = self._tracker.responses.get(argument)
                order = self._tracker.orders.get(argument)
            if response is None:
                if order is None:
                    return False, f'unknown order {argument!r}'
                response = JobResponse(order_id=argument, state=JobState.WAITING.value,
                                       work_master=order.work_master, quantity=order.quantity)
            return True, json.dumps(make_record(response, self.cfg.cell_id, self._now_s()).body, sort_keys=True)
        if command == 'Cancel':
            return self._cancel(argument)
        if command == 'Abort':
            with self._lock:
                response = self._tracker.responses.get(argument) if argument else None
            if argument and (response is None or response.state not in (JobState.RUNNING.value,
                                                                          JobState.HELD.value)):
                state = response.state if response else 'unknown to the cell'
                return False, (f'order {argument!r} is {state}: Abort ends a running order; Cancel removes a '
                               'waiting one')
        return self._call_supervisor(command)

    def _wait_for_cell(self, order_id: str) -> JobResponse | None:
        """The cell's answer to an order (job_accepted -> waiting, job_rejected -> rejected), or None."""
        deadline = time.monotonic() + self.cfg.service_timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                response = self._tracker.responses.get(order_id)
            if response is not None:
                return response
            time.sleep(0.01)   # worker thread (OPC UA method / MQTT command), not a ROS callback
        return None

    def _store_and_start(self, argument: str) -> tuple[bool, str]:
        """Atomic: the order is stored only when the cell can start it at once (idle, nothing queued
        before it); a refused start cancels it again. A refusal before storing leaves the id unused."""
        with self._lock:
            queued = sorted(o for o, r in self._tracker.responses.items() if r.state == JobState.WAITING.value)
        why = ''
        if self._cell_state != 'idle':
            why = f'the cell is {self._cell_state or "not reporting its state"}, not idle'
        elif queued:
            why = f'order(s) {", ".join(queued)} wait before it (Store it, or Start them first)'
        elif not self._supervisor_clients['cell/start'].service_is_ready():
            why = 'the supervisor\'s cell/start is not available'
        if why:
            return False, f'order not stored (its id stays unused): {why}'
        accepted, order_id, reason = self.intake(argument)
        if not accepted:
            return False, reason
        answered = self._wait_for_cell(order_id)
        if answered is None or answered.state != JobState.WAITING.value:
            return False, (f'order {order_id} not queued by the cell: '
                           f'{answered.reason if answered else "no answer in time"}')
        ok, message = self._call_supervisor('Start')
        if ok:
            return True, f'order {order_id} stored and started: {message}'
        cancelled, why_not = self._cancel(order_id)
        return False, (f'order {order_id} stored but not started ({message}); '
                       f'{"cancelled" if cancelled else "cancel failed: " + why_not}')

    def _cancel(self, order_id: str) -> tuple[bool, str]:
        """Cancel a waiting order through the supervisor (cell/cancel_order); the answer is the cell's."""
        client = self._cancel_client
        if not order_id:
            return False, 'Cancel needs the order id'
        if not client.service_is_ready():
            return False, f'supervisor service {client.srv_name} is not available'
        return self._wait_future(client, AddDiagnostics.Request(load_namespace=order_id))

    def _wait_future(self, client, request) -> tuple[bool, str]:
        future = client.call_async(request)
        deadline = time.monotonic() + self.cfg.service_timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                future.cancel()
                return False, f'{client.srv_name} did not answer within {self.cfg.service_timeout_s} s'
            time.sleep(0.01)   # worker thread (OPC UA method / MQTT command), not a ROS callback
        response = future.result()
        return bool(response.success), response.message

    def _call_supervisor(self, command: str) -> tuple[bool, str]:
        """Call the supervisor's Trigger service from a worker thread; the node's executor completes it."""
        client = self._supervisor_clients[service_for(command)]
        if not client.service_is_ready():
            return False, f'supervisor service {client.srv_name} is not available'
        return self._wait_future(client, Trigger.Request())

    # ------------------------------------------------------------ shutdown

    def on_shutdown(self) -> None:
        self._writer.stop()
        self._dispatcher.stop()
        if self._mqtt:
            self._mqtt.stop()
        if self._opcua:
            self._opcua.stop()
        self._outbox.close()


def main(args: list[str] | None = None) -> int:
    return run_node(lambda: MesBridge(), args)


if __name__ == '__main__':
    raise SystemExit(main())
