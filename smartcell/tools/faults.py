"""`smartcell faults`: a fault campaign on a running simulated cell with a real MQTT broker.

The cell runs in **real time** (as `ros2 launch smartcell cell.launch.py sim:=true`: the twin paced
by the wall clock, the others on its /clock), not in lockstep: in lockstep a killed node stops
simulated time itself (the twin waits for the arm), so nothing could be late, no deadman could run
out and a restart would only resume a frozen world. In real time the world goes on while a process
is dead, as on a real cell, and the arm's deadman (steady clock) is what stops it.

Beside the cell: a real broker (mosquitto when on PATH, else amqtt with logins, which queues QoS 1
for persistent sessions only when authenticated), an MES consumer on a persistent session (QoS 1),
an MES order client on MQTT, and an OPC UA client (asyncua) that reads the cell's state.

Faults, in turn and at seeded random moments: kill -9 of mes_bridge, supervisor, scanner, twin, arm,
and a stop of the broker; each is restarted after a seeded random down time. The supervisor and the
arm are killed while the arm moves (waiting up to MOVING_WAIT_S for it): a motion cut off half way is
the case that can strand a cell. An order is sent at
each fault (while the target is down when that is possible). Checked:
- every record the consumer gets, per stream: no gap in `seq`, no duplicate after deduplication on
  `record_id` (redeliveries of the same record are allowed by the at-least-once contract and
  counted apart), in order; unit and event records against the outbox on disk;
- every order is answered (orders/accepted or orders/rejected names it);
- with the supervisor gone the arm is at rest within its deadman budget (from the twin's joint states);
- after each restart the cell returns to service (state running and the arm moving) within
  `--service-timeout`; a fault after which it does not is a stuck state.
Exit 1 on any loss, duplicate, unanswered order, late stop or stuck state.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartcell.twin.scenarios import TASK_DRIVEN_SCENARIO

TARGETS = ('mes_bridge', 'supervisor', 'scanner', 'twin', 'arm', 'broker')
REST_SPEED_RADPS = 0.01          # every joint slower than this: the arm is at rest
MOVING_SPEED_RADPS = 0.05        # some joint faster than this: the arm is working
KILLED_WHILE_MOVING = ('supervisor', 'arm')
MOVING_WAIT_S = 30.0             # the longest wait for the arm to move before such a kill (then killed anyway)
PRODUCTION_STREAMS = ('job_order', 'job_response', 'unit', 'equipment_state', 'alarm', 'safety', 'safety_summary')


@dataclass(frozen=True)
class Fault:
    """One injected fault: which process, when (s after the previous one ended), for how long."""

    target: str
    wait_s: float
    down_s: float


def plan_faults(count: int, seed: int, gap_s: tuple[float, float], down_s: tuple[float, float]) -> list[Fault]:
    """Each target in turn (TARGETS order), at seeded random moments and down times."""
    rng = random.Random(seed)
    return [Fault(TARGETS[i % len(TARGETS)], round(rng.uniform(*gap_s), 3), round(rng.uniform(*down_s), 3))
            for i in range(count)]


@dataclass
class StreamCheck:
    """What one MQTT stream delivered: first copies in arrival order, and what was wrong."""

    seqs: list[int] = field(default_factory=list)
    record_ids: set[str] = field(default_factory=set)
    pairs: list[tuple[int, str]] = field(default_factory=list)      # (seq, record_id) of the first copies
    redeliveries: int = 0            # same record_id again (allowed: at-least-once, deduplicated)
    duplicates: list[int] = field(default_factory=list)     # a seq seen again under another record_id
    out_of_order: list[int] = field(default_factory=list)

    def add(self, seq: int, record_id: str) -> None:
        if record_id in self.record_ids:
            self.redeliveries += 1
            return
        self.record_ids.add(record_id)
        if seq in self.seqs:
            self.duplicates.append(seq)
        elif self.seqs and seq < self.seqs[-1]:
            self.out_of_order.append(seq)
        self.seqs.append(seq)
        self.pairs.append((seq, record_id))

    def gaps(self, first_expected: int = 1) -> list[int]:
        """Missing seqs between first_expected and the highest seq received."""
        if not self.seqs:
            return []
        present = set(self.seqs)
        return [s for s in range(first_expected, max(present) + 1) if s not in present]


def check_streams(streams: dict[str, StreamCheck], stored: dict[str, list[tuple[int, str]]]) -> dict[str, Any]:
    """Consumer's streams against the outbox on disk: lost = stored (up to the newest delivered) but not received."""
    lost: dict[str, list[int]] = {}
    not_stored: dict[str, list[int]] = {}
    for stream, rows in stored.items():
        received = streams.get(stream, StreamCheck())
        newest = max(received.seqs, default=0)
        missing = [seq for seq, rid in rows if seq <= newest and rid not in received.record_ids]
        if missing:
            lost[stream] = missing
    for stream, received in streams.items():
        ids = {rid for _, rid in stored.get(stream, [])}
        extra = [seq for seq, rid in received.pairs if rid not in ids] if ids else []
        if extra:
            not_stored[stream] = extra
    gaps = {s: c.gaps() for s, c in streams.items() if c.gaps()}
    return {'gaps': gaps, 'lost': lost, 'not_stored': not_stored,
            'duplicates': {s: c.duplicates for s, c in streams.items() if c.duplicates},
            'out_of_order': {s: c.out_of_order for s, c in streams.items() if c.out_of_order},
            'redeliveries': sum(c.redeliveries for c in streams.values()),
            'records_checked': sum(len(c.seqs) for c in streams.values())}


class Consumer:
    """The MES side: a persistent QoS 1 session on <prefix>/<cell>/#, recording every record, and order answers."""

    def __init__(self, host: str, port: int, base: str, username: str, password: str) -> None:
        from smartcell.io.mqtt import MqttSettings, make_client
        self.base = base
        self.lock = threading.Lock()
        self.streams: dict[str, StreamCheck] = {}
        self.answers: dict[str, str] = {}               # order_id -> 'accepted' | 'rejected'
        self.unreadable = 0
        self.status = ''                                # the bridge's retained online/offline
        self.connected = threading.Event()
        self.subscribed = threading.Event()             # the broker acknowledged the subscription
        settings = MqttSettings(host=host, port=port, username=username, password=password, persistent_session=True,
                                reconnect_min_s=0.1, reconnect_max_s=1.0)
        self.client = make_client(settings, 'smartcell-faults-consumer')
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self._host, self._port = host, port

    def start(self) -> 'Consumer':
        self.client.connect_async(self._host, self._port, keepalive=5)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send_order(self, order: dict[str, Any]) -> None:
        self.client.publish(f'{self.base}/orders/in', json.dumps(order), qos=1)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(f'{self.base}/#', 1)
            self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic[len(self.base) + 1:]
        if topic == 'status':
            self.status = message.payload.decode(errors='replace')
            return
        try:
            data = json.loads(message.payload)
        except ValueError:
            with self.lock:
                self.unreadable += 1
            return
        with self.lock:
            if topic in ('orders/accepted', 'orders/rejected'):
                self.answers.setdefault(str(data.get('order_id', '')), topic.split('/')[1])
            elif topic in PRODUCTION_STREAMS and isinstance(data, dict) and 'seq' in data:
                self.streams.setdefault(topic, StreamCheck()).add(int(data['seq']), str(data['record_id']))

    def count(self, stream: str) -> int:
        with self.lock:
            return len(self.streams.get(stream, StreamCheck()).seqs)


class Watcher:
    """rclpy peer spun in a thread: the twin's joint states (wall arrival) and the cell state."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String

        from smartcell.nodes.common import LATCHED_QOS, STREAM_QOS
        self.context = rclpy.Context()
        rclpy.init(context=self.context, args=[])
        self.node = rclpy.create_node('faults_watcher', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.joint_samples: list[tuple[float, float]] = []      # (wall monotonic s, max |velocity| rad/s)
        self.state = ''
        self.node.create_subscription(JointState, 'twin/joint_states', self._on_joints, STREAM_QOS)
        self.node.create_subscription(String, 'cell/state', self._on_state, LATCHED_QOS)
        from std_srvs.srv import Trigger
        self._trigger = Trigger
        self._clients = {name: self.node.create_client(Trigger, f'cell/{name}') for name in ('reset', 'start')}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_joints(self, msg) -> None:
        speed = max((abs(v) for v in msg.velocity), default=0.0)
        with self.lock:
            self.joint_samples.append((time.monotonic(), speed))
            del self.joint_samples[:-5000]

    def _on_state(self, msg) -> None:
        with self.lock:
            self.state = msg.data

    def samples_since(self, t0: float) -> list[tuple[float, float]]:
        with self.lock:
            return [s for s in self.joint_samples if s[0] >= t0]

    def moving_since(self, t0: float) -> bool:
        return any(v > MOVING_SPEED_RADPS for _, v in self.samples_since(t0))

    def call(self, name: str, timeout_s: float = 10.0) -> str:
        """Call cell/<name> (Trigger) as an operator would; the answer's message, or why there was none."""
        client = self._clients[name]
        deadline = time.monotonic() + timeout_s
        while not client.service_is_ready():
            if time.monotonic() > deadline:
                return f'cell/{name}: no service'
            time.sleep(0.05)        # the executor thread discovers the service; this thread only polls
        future = client.call_async(self._trigger.Request())
        while not future.done():
            if time.monotonic() > deadline:
                return f'cell/{name}: no answer'
            time.sleep(0.05)
        result = future.result()
        return f'cell/{name}: {"ok" if result.success else "refused"}: {result.message}'

    def close(self) -> None:
        import rclpy
        self._stop.set()
        self._thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def at_rest_after(samples: list[tuple[float, float]], t_kill: float) -> float | None:
    """Seconds from the kill to the first sample from which the arm stays at rest; None if it never does."""
    rest_from = None
    for t, speed in samples:
        if speed < REST_SPEED_RADPS:
            rest_from = t if rest_from is None else rest_from
        else:
            rest_from = None
    return None if rest_from is None else max(0.0, rest_from - t_kill)


def opcua_state(endpoint: str, timeout_s: float = 5.0) -> str:
    """The cell state as the OPC UA server shows it (anonymous read), or why it could not be read."""
    import asyncio

    async def read() -> str:
        from asyncua import Client
        client = Client(endpoint, timeout=timeout_s)
        async with client:
            nodes = await client.get_objects_node().get_children()
            return f'connected ({len(nodes)} objects)'
    try:
        return asyncio.run(asyncio.wait_for(read(), timeout_s * 2))
    except Exception as exc:     # noqa: BLE001 - any failure is reported as the client saw it
        return f'failed: {exc!r}'


@dataclass(frozen=True)
class FaultOptions:
    faults: int
    seed: int
    log_dir: Path
    gap_s: tuple[float, float] = (4.0, 10.0)
    down_s: tuple[float, float] = (0.5, 3.0)
    service_timeout_s: float = 60.0
    settle_s: float = 15.0
    scenario: str = TASK_DRIVEN_SCENARIO


def deadman_budget_s(arm: dict[str, Any], stopping_time_s: float) -> float:
    """Kill -> at rest: the deadman, its check period (timeout/4), the scale ramp from 1 to 0, the stop itself,
    plus two twin ticks of observation."""
    timeout = float(arm['deadman_timeout_s'])
    return timeout * 1.25 + 1.0 / float(arm['scale_ramp_down_per_s']) + stopping_time_s + 2.0 / 30.0


def run(options: FaultOptions, out=sys.stdout) -> dict[str, Any]:
    """The campaign; returns the report (see format_report)."""
    import numpy as np

    from smartcell.core.params import load_cell_config
    from smartcell.core.safety.stopping import StoppingModel
    from smartcell.io.broker import LocalBroker, free_port
    from smartcell.share import share_file
    from smartcell.tools.cell_processes import CellProcesses, isolated_ros_env, node_command
    from smartcell.topology import nodes_for, param_registry

    log_dir = options.log_dir.resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    config = share_file('config', 'cell.yaml')
    resolved = load_cell_config(config, param_registry())
    cell_id = str(resolved['mes_bridge'].get('cell_id') or resolved['supervisor']['cell_id'])
    prefix = str(resolved['mes_bridge']['topic_prefix'])
    stopping = StoppingModel.from_yaml(share_file('config', 'stopping.yaml'))
    budget_s = deadman_budget_s(resolved['arm'], float(np.max(stopping.stopping_time_s)))

    import shutil
    use_logins = not shutil.which('mosquitto')      # amqtt queues for persistent sessions only when logged in
    password = 'faults-' + str(random.Random(options.seed).randint(0, 10**9))
    users = {'smartcell': password, 'mes': password} if use_logins else None
    broker = LocalBroker(free_port(), workdir=log_dir / 'broker', users=users)
    opcua_port = free_port()
    env = isolated_ros_env()
    env['ROS_HOME'] = str(log_dir / 'ros_home')
    env['SMARTCELL_MQTT_PASSWORD'] = password
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'AMENT_PREFIX_PATH')})
    sim_time = {'use_sim_time': True}
    supervisor = {**sim_time, 'auto_start': True, 'evidence_log': str(log_dir / 'safety_evidence.jsonl'),
                  'order_store_file': str(log_dir / 'job_orders.sqlite')}
    if 'event_journal_file' in param_registry()['supervisor'].by_name:
        supervisor['event_journal_file'] = str(log_dir / 'events.sqlite')
    db_path = log_dir / 'mes_outbox.sqlite'
    overrides: dict[str, dict[str, object]] = {
        'twin': {'lockstep': False, 'real_time_factor': 1.0, 'scenario': options.scenario,
                 'seed': options.seed},
        'scanner': dict(sim_time), 'arm': {**sim_time, 'backend': 'sim'}, 'supervisor': supervisor,
        'mes_bridge': {**sim_time, 'db_path': str(db_path),
                       'opcua_endpoint': f'opc.tcp://127.0.0.1:{opcua_port}/smartcell/',
                       'mqtt_enabled': True, 'mqtt_port': broker.port,
                       'mqtt_username': 'smartcell' if use_logins else '', 'backoff_max_s': 2.0}}
    specs = {spec.name: spec for spec in nodes_for(sim=True, groups=('cell', 'mes'))}
    commands = {name: node_command(spec.module, name, config, overrides.get(name, {}), '',
                                   log_dir / f'{name}.overrides.yaml') for name, spec in specs.items()}
    processes = CellProcesses(log_dir, env)
    report: dict[str, Any] = {'broker': broker.kind, 'faults_planned': options.faults, 'seed': options.seed,
                              'deadman_budget_s': round(budget_s, 3), 'faults': []}
    watcher = consumer = None
    orders_sent: list[str] = []
    say = (lambda text: print(text, file=out, flush=True))
    try:
        broker.start()
        consumer = Consumer('127.0.0.1', broker.port, f'{prefix}/{cell_id}', 'mes' if use_logins else '',
                            password if use_logins else '').start()
        # Subscribed before the bridge's first record: the broker keeps QoS 1 messages only for sessions
        # it knows, so records published earlier would count as lost although nobody lost them.
        _wait(consumer.subscribed.is_set, 30.0, 'the MES consumer subscribed at the broker', None)
        for name, command in commands.items():
            processes.start(name, command)
        watcher = Watcher()
        # The start gets the same treatment as a restart: a cell in FAULT before any fault is stuck too.
        start = return_to_service(watcher, processes, time.monotonic(), 120.0)
        report['start'] = start
        if 'back_in_service_s' not in start:
            raise RuntimeError(f"the cell never ran: {start['stuck']}; fault reasons: "
                               f"{fault_reasons(log_dir / 'events.sqlite')}")
        _wait(lambda: consumer.count('equipment_state') > 0, 180.0, 'the first MES record at the consumer', processes)
        say(f'cell running; broker {broker.kind} on {broker.port}; {options.faults} faults, seed {options.seed}')
        for index, fault in enumerate(plan_faults(options.faults, options.seed, options.gap_s, options.down_s)):
            _wait_s(fault.wait_s, processes)
            if fault.target in KILLED_WHILE_MOVING:
                _wait_s(MOVING_WAIT_S, processes, until=lambda: watcher.moving_since(time.monotonic() - 0.2))
            order_id = f'FAULT-{options.seed}-{index:04d}'
            entry: dict[str, Any] = {'index': index, 'target': fault.target, 'down_s': fault.down_s,
                                     'order': order_id}
            t_kill = time.monotonic()
            entry['arm_moving_at_kill'] = watcher.moving_since(t_kill - 0.5)
            if fault.target == 'broker':
                broker.stop()
            else:
                processes.kill(fault.target)
            if fault.target != 'broker':     # the order reaches the broker while the target is down
                consumer.send_order({'order_id': order_id, 'work_master': 'demo', 'quantity': ORDER_UNITS})
                orders_sent.append(order_id)
            _wait_s(fault.down_s, processes, ignore=fault.target)
            if fault.target == 'supervisor':
                stop_s = at_rest_after(watcher.samples_since(t_kill), t_kill)
                entry['arm_at_rest_after_s'] = stop_s
                # judged when the arm was moving at the kill and the supervisor stayed away long enough
                entry['arm_stopped_in_budget'] = (stop_s is not None and stop_s <= budget_s) \
                    if fault.down_s >= budget_s and entry['arm_moving_at_kill'] else None
            if fault.target == 'broker':
                broker.start()
                # A restarted broker (no persistence) has no session of the bridge until it reconnects: an
                # order published before that has no subscriber, on any MQTT cell. Sent once the bridge is back.
                consumer.status = ''
                _wait(lambda: consumer.status == 'online', options.service_timeout_s, 'the bridge back online',
                      processes)
                consumer.send_order({'order_id': order_id, 'work_master': 'demo', 'quantity': ORDER_UNITS})
                orders_sent.append(order_id)
            else:
                processes.start(fault.target, commands[fault.target])
            t_back = time.monotonic()
            back = return_to_service(watcher, processes, t_back, options.service_timeout_s)
            entry.update(back)
            rest = entry.get('arm_at_rest_after_s')
            say(f'fault {index + 1}/{options.faults}: kill {fault.target} for {fault.down_s:.1f} s -> '
                + (f"stuck ({entry['stuck']})" if 'stuck' in entry else f"back in {entry['back_in_service_s']} s")
                + (f' [{entry["operator_resets"]} operator reset(s), last: {entry["operator_reset"]}]'
                   if 'operator_reset' in entry else '')
                + (f', arm at rest after {rest:.2f} s (moving at the kill: {entry["arm_moving_at_kill"]})'
                   if rest is not None else '')
                + (f' (moving at the kill: {entry["arm_moving_at_kill"]})' if fault.target == 'arm' else ''))
            report['faults'].append(entry)
        report['opcua_client'] = opcua_state(f'opc.tcp://127.0.0.1:{opcua_port}/smartcell/')
        # Let the bridge deliver its backlog and answer the last orders.
        deadline = time.monotonic() + options.settle_s
        while time.monotonic() < deadline and not all(o in consumer.answers for o in orders_sent):
            _wait_s(0.5, processes)
        _wait_s(3.0, processes)
        processes.check_alive()
        # The supervisor stops first, so that no event is journaled after the bridge has gone: then the
        # bridge gets the time to turn every journaled event into records (it is judged on that).
        processes.stop_one('supervisor')
        _wait_s(options.settle_s, processes, until=lambda: (journaled_events(log_dir / 'events.sqlite') or 0)
                <= (bridge_event_cursor(db_path) or 0))
        processes.check_alive()
    finally:
        failed = processes.stop()
        if watcher is not None:
            watcher.close()
        if consumer is not None:
            time.sleep(0.5)       # not a DDS wait: the last MQTT messages in flight to the consumer
            consumer.stop()
        broker.stop()
    stored = stored_records(db_path)
    with consumer.lock:
        streams = {s: c for s, c in consumer.streams.items()}
        answers = dict(consumer.answers)
    report.update(check_streams(streams, stored))
    report['failed_on_shutdown'] = failed
    report['orders_sent'] = len(orders_sent)
    report['orders_unanswered'] = [o for o in orders_sent if o not in answers]
    report['faults_injected'] = len(report['faults'])
    report['stuck'] = (['start'] if 'stuck' in report.get('start', {}) else []) + \
        [f"{f['index']}:{f['target']}" for f in report['faults'] if 'stuck' in f]
    report['late_stops'] = [f"{f['index']}:{f['target']}" for f in report['faults']
                            if f.get('arm_stopped_in_budget') is False]
    report['units_received'] = len(streams.get('unit', StreamCheck()).seqs)
    report['events_journaled'] = journaled_events(log_dir / 'events.sqlite')
    report['bridge_event_cursor'] = bridge_event_cursor(db_path)
    report['fault_reasons'] = fault_reasons(log_dir / 'events.sqlite')
    journal, cursor = report['events_journaled'], report['bridge_event_cursor']
    report['events_not_in_outbox'] = (journal - (cursor or 0)) if journal is not None else None
    report['ok'] = not ((report['events_not_in_outbox'] or 0) > 0 or report['lost'] or report['gaps']
                        or report['duplicates'] or report['out_of_order']
                        or report['orders_unanswered'] or report['stuck'] or report['late_stops'])
    (log_dir / 'faults.json').write_text(json.dumps(report, indent=2, default=str))
    return report


FAULT_STATES = ('fault', 'emergency_stop')
OPERATOR_WAIT_S = 5.0            # a cell this long in a fault state after a restart gets an operator's reset + start


def return_to_service(watcher: Watcher, processes, t_back: float, timeout_s: float) -> dict[str, Any]:
    """Wait for the cell to work again (state running, arm moving). A cell left in a fault state is reset and
    started as an operator would (so later faults still mean something); needing that counts as stuck."""
    deadline = t_back + timeout_s
    in_fault_since = None
    result: dict[str, Any] = {}
    while True:
        processes.check_alive()
        now = time.monotonic()
        if watcher.state == 'running' and watcher.moving_since(t_back):
            result['back_in_service_s'] = round(now - t_back, 2)
            return result
        if watcher.state in FAULT_STATES:
            in_fault_since = in_fault_since or now
            if now - in_fault_since >= OPERATOR_WAIT_S:
                result['stuck'] = f'state {watcher.state!r} after the restart: needed an operator reset'
                result['operator_resets'] = result.get('operator_resets', 0) + 1
                result['operator_reset'] = '; '.join(watcher.call(name) for name in ('reset', 'start'))
                in_fault_since = None
        else:
            in_fault_since = None
        if now > deadline:
            result['stuck'] = (result.get('stuck', '') + '; ' if 'stuck' in result else '') + \
                f'not back in service within {timeout_s:g} s: state {watcher.state!r}, arm moving: ' \
                f'{watcher.moving_since(t_back)}'
            return result
        time.sleep(0.05)    # polling what the watcher thread updates


def stored_records(db_path: Path) -> dict[str, list[tuple[int, str]]]:
    """(seq, record_id) per production/safety stream in the outbox file, read-only."""
    if not db_path.exists():
        return {}
    db = sqlite3.connect(f'file:{db_path}?mode=ro', uri=True)
    try:
        rows = db.execute('SELECT stream, seq, record_id FROM records ORDER BY stream, seq').fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    stored: dict[str, list[tuple[int, str]]] = {}
    for stream, seq, record_id in rows:
        if stream in PRODUCTION_STREAMS:
            stored.setdefault(stream, []).append((int(seq), str(record_id)))
    return stored


def journaled_events(path: Path) -> int | None:
    """The newest seq in the supervisor's event journal (None without a journal)."""
    return _query_int(path, 'SELECT MAX(seq) FROM events')


def bridge_event_cursor(db_path: Path) -> int | None:
    """The newest cell event seq whose records the bridge has stored (None without the cursor table)."""
    return _query_int(db_path, 'SELECT MAX(seq) FROM event_cursor')


def fault_reasons(path: Path) -> list[str]:
    """Distinct reasons of the cell's `fault` events in the journal (why a cell needed a reset)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    try:
        rows = db.execute("SELECT json FROM events WHERE type = 'fault' ORDER BY seq").fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    reasons: list[str] = []
    for (text,) in rows:
        reason = str(json.loads(text).get('reason', ''))
        if reason not in reasons:
            reasons.append(reason)
    return reasons


def _query_int(path: Path, sql: str) -> int | None:
    if not path.exists():
        return None
    db = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    try:
        value = db.execute(sql).fetchone()[0]
        return None if value is None else int(value)
    except sqlite3.Error:
        return None
    finally:
        db.close()


# Units per order: enough that the queue never runs dry between faults (an idle cell with nothing to do
# cannot show it is back in service); the demo job's cycle is about 25 s.
ORDER_UNITS = 3


def _wait(condition, timeout_s: float, what: str, processes) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if processes is not None:
            processes.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout_s} s waiting for {what}')
        time.sleep(0.05)     # polling state that other threads update; the cell runs on its own


def _wait_s(seconds: float, processes, ignore: str = '', until=None) -> None:
    """Let the cell run for a while (a fault's moment or down time), or until `until()` is true, failing
    on any unexpected death."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until is not None and until()):
        dead = {n: c for n, c in processes.failed().items() if n != ignore}
        if dead:
            name = next(iter(dead))
            raise RuntimeError(f'node {name!r} exited with code {dead[name]}; its log ends with:\n'
                               f'{processes.log_tail(name)}')
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def format_report(report: dict[str, Any]) -> str:
    judged = [f['arm_at_rest_after_s'] for f in report['faults'] if f.get('arm_stopped_in_budget') is not None]
    back = [f['back_in_service_s'] for f in report['faults'] if 'back_in_service_s' in f]
    lost = sum(len(set(report['lost'].get(s, [])) | set(report['gaps'].get(s, [])))
               for s in set(report['lost']) | set(report['gaps']))
    rows = [('faults injected', str(report['faults_injected'])),
            ('records checked (first copies)', str(report['records_checked'])),
            ('  of which unit records', str(report['units_received'])),
            ('lost (gaps in seq or stored but not received)', str(lost)),
            ('duplicated (same seq, another record id)', str(sum(len(v) for v in report['duplicates'].values()))),
            ('out of order', str(sum(len(v) for v in report['out_of_order'].values()))),
            ('redeliveries deduplicated on record_id', str(report['redeliveries'])),
            ('orders sent / unanswered', f"{report['orders_sent']} / {len(report['orders_unanswered'])}"),
            ('stuck states (operator reset needed or no return)', str(len(report['stuck']))),
            ('  operator resets made to go on', str(sum(f.get('operator_resets', 0) for f in report['faults']))),
            ('supervisor kills judged (arm moving, gone long enough)', str(len(judged))),
            ('  arm at rest after (max)', f"{max(judged):.2f} s (budget {report['deadman_budget_s']} s)"
             if judged else '-'),
            ('late stops', str(len(report['late_stops']))),
            ('back in service after restart (max)', f'{max(back):.1f} s' if back else '-'),
            ('cell events: journaled (newest seq) / turned into records by the bridge',
             f"{report['events_journaled']} / {report.get('bridge_event_cursor')}"),
            ('OPC UA client', str(report.get('opcua_client', '-'))),
            ('broker', report['broker'])]
    width = max(len(r[0]) for r in rows)
    lines = [f'{name.ljust(width)}  {value}' for name, value in rows]
    for key in ('gaps', 'lost', 'duplicates', 'out_of_order', 'not_stored'):
        for stream, seqs in report[key].items():
            lines.append(f'{key} in {stream}: seq {seqs[:20]}{" ..." if len(seqs) > 20 else ""}')
    for item in report['orders_unanswered'][:10]:
        lines.append(f'unanswered order: {item}')
    if 'stuck' in report.get('start', {}):
        lines.append(f"stuck at the start: {report['start']['stuck']} [{report['start'].get('operator_reset', '')}]")
    for fault in report['faults']:
        if 'stuck' in fault:
            lines.append(f"stuck after fault {fault['index']} ({fault['target']}): {fault['stuck']}")
    for reason in report.get('fault_reasons', [])[:10]:
        lines.append(f'cell fault: {reason[:200]}')
    lines.append('result: ' + ('OK' if report['ok'] else 'FAILED'))
    return '\n'.join(lines)


def parse_args(argv: list[str]) -> FaultOptions:
    parser = argparse.ArgumentParser(prog='smartcell faults', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--faults', type=int, default=12, help='faults to inject, in turn over '
                        + ', '.join(TARGETS) + ' (default 12)')
    parser.add_argument('--seed', type=int, default=1, help='seed of the moments, down times and scenario')
    parser.add_argument('--log-dir', type=Path, default=None,
                        help='logs, outbox and report (default runs/faults-<time>)')
    parser.add_argument('--gap', type=float, nargs=2, default=(4.0, 10.0), metavar=('MIN', 'MAX'),
                        help='wall seconds between faults (seeded uniform)')
    parser.add_argument('--down', type=float, nargs=2, default=(0.5, 3.0), metavar=('MIN', 'MAX'),
                        help='wall seconds a process stays dead (seeded uniform)')
    parser.add_argument('--service-timeout', type=float, default=60.0,
                        help='seconds for the cell to return to service after a restart before it counts as stuck')
    parser.add_argument('--scenario', default=TASK_DRIVEN_SCENARIO,
                        help=f'person behaviour in the twin (default {TASK_DRIVEN_SCENARIO}: the operator does the '
                        'steps the job gives them, so handovers complete; with a scripted scenario such as shift '
                        'nobody takes the part and the cell waits, which counts as not back in service)')
    args = parser.parse_args(argv)
    if args.faults < 1:
        parser.error('--faults must be >= 1')
    from datetime import datetime
    log_dir = args.log_dir or Path('runs') / datetime.now().strftime('faults-%Y%m%d-%H%M%S')
    return FaultOptions(args.faults, args.seed, log_dir, tuple(args.gap), tuple(args.down), args.service_timeout,
                        scenario=args.scenario)


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    try:
        report = run(options)
    except (RuntimeError, TimeoutError) as exc:
        print(f'smartcell faults: {exc}', file=sys.stderr)
        return 1
    print(format_report(report))
    print(f'report, logs and outbox in {options.log_dir}')
    return 0 if report['ok'] else 1
