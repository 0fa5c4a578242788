"""mes_bridge across processes: real DDS, real MQTT broker, real OPC UA client, SQLite on disk.

The test process plays the supervisor (a node named `supervisor`: cell/state, cell/events signed with
the cell key, Trigger services) and the MES (MQTT consumer, OPC UA client); the bridge runs as its own
executable, with the same cell key file.
"""
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

rclpy = pytest.importorskip('rclpy')
from asyncua import Client, ua  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String, UInt64  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from smartcell.core.safety.authority import load_or_create_cell_key, sign_event  # noqa: E402
from smartcell.io.broker import LocalBroker, free_port  # noqa: E402
from smartcell.io.mqtt import DedupConsumer  # noqa: E402
from smartcell.io.opcua import axis_path, generate_self_signed, hash_password  # noqa: E402
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256  # noqa: E402
from smartcell.tools.audit import main as audit_main  # noqa: E402

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]
CELL = f'cell-{uuid.uuid4().hex[:6]}'
DOMAIN = 100 + random.randrange(100)
# a namespace of our own: other test sessions on this machine may share the random domain id
NAMESPACE = f'/mes_test_{uuid.uuid4().hex[:8]}'
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
ORDERS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)


def poll(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class FakeCell:
    """The supervisor side, spun in a background thread: numbers and signs its events (seq, auth) and
    answers replay requests from the events it published (the supervisor does so from its journal)."""

    def __init__(self, key_file):
        self.key = load_or_create_cell_key(key_file)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN)
        self.node = rclpy.create_node('supervisor', namespace=NAMESPACE, context=self.context)
        self.state_pub = self.node.create_publisher(String, 'cell/state', LATCHED)
        self.events_pub = self.node.create_publisher(String, 'cell/events', 50)
        self.joints_pub = self.node.create_publisher(JointState, 'joint_states', 10)
        self.orders, self.diagnostics, self.calls = [], [], []
        self.published: list[str] = []          # the fake journal: published[i] has seq i + 1
        self.replay_requests: list[int] = []
        self.replay_pub = self.node.create_publisher(String, 'cell/events/replay', 500)
        self.node.create_subscription(UInt64, 'cell/events/replay_request', self._on_replay_request, LATCHED)
        self.node.create_subscription(String, 'mes/job_order', lambda m: self.orders.append(json.loads(m.data)), ORDERS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        for name in ('start', 'pause', 'resume', 'stop'):
            self.node.create_service(Trigger, f'cell/{name}', self._service(name))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _service(self, name):
        def handle(request, response):
            self.calls.append(name)
            response.success, response.message = True, f'{name} accepted'
            return response
        return handle

    def event(self, kind, **fields):
        payload = {'event_id': str(uuid.uuid4()), 'cell_id': CELL, 'seq': len(self.published) + 1, 'type': kind,
                   'stamp': self.node.get_clock().now().nanoseconds * 1e-9, **fields}
        payload['auth'] = sign_event(self.key, payload)
        self.published.append(json.dumps(payload, sort_keys=True))
        self.events_pub.publish(String(data=self.published[-1]))
        return payload

    def _on_replay_request(self, msg):
        self.replay_requests.append(int(msg.data))
        for text in self.published[int(msg.data):]:
            self.replay_pub.publish(String(data=text))

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def cell(tmp_path):
    fake = FakeCell(tmp_path / 'cell.key')
    yield fake
    fake.close()


@pytest.fixture
def broker(tmp_path):
    with LocalBroker(workdir=tmp_path / 'broker') as running:
        yield running


def start_bridge(tmp_path, broker_port, opcua_port, env_extra=None, **extra):
    users = tmp_path / 'users.yaml'
    users.write_text(f'mes: {{password_hash: "{hash_password("pw", iterations=1000)}", role: operator}}\n')
    env = {**os.environ, 'ROS_DOMAIN_ID': str(DOMAIN), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
           'AMENT_PREFIX_PATH': str(ROOT / '.venv'), 'PYTHONPATH': str(ROOT), **(env_extra or {})}
    params = {'cell_id': CELL, 'db_path': str(tmp_path / 'outbox.sqlite'), 'mqtt_port': broker_port,
              'opcua_endpoint': f'opc.tcp://127.0.0.1:{opcua_port}/smartcell/', 'opcua_users_file': str(users),
              'opcua_security': 'both',     # user logins only on the encrypted endpoint
              'namespace_derived': "['']",   # the test's namespace must not rename the cell or move its port
              'telemetry_period_s': 0.2, 'diagnostics_period_s': 0.2, 'backoff_max_s': 1.0, 'shift_length_s': 2.0,
              'cell_key_file': str(tmp_path / 'cell.key'), **extra}
    args = [sys.executable, '-m', 'smartcell.nodes.mes_bridge', '--ros-args', '-r', f'__ns:={NAMESPACE}']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def bridge_output(process):
    if process.poll() is None:
        stop(process)
    return process.stdout.read()


def streams(consumer):
    return {name: len(records) for name, records in consumer.records.items()}


def test_bridge_end_to_end(tmp_path, cell, broker):
    consumer = DedupConsumer('127.0.0.1', broker.port, f'smartcell/{CELL}/#', client_id='mes').start()
    assert consumer.subscribed.wait(10)
    opcua_port = free_port()
    bridge = start_bridge(tmp_path, broker.port, opcua_port)
    try:
        # OPC UA start-up is slow under load
        assert poll(lambda: cell.events_pub.get_subscription_count() > 0, 90), 'bridge did not subscribe'
        assert consumer.wait_until(lambda c: c.other.get(f'smartcell/{CELL}/status') == b'online', 20)
        publisher = consumer._client       # the MES sends PO-1; the bridge validates and queues it
        publisher.publish(f'smartcell/{CELL}/orders/in', json.dumps({'order_id': 'PO-1', 'work_master': 'bracket_a',
                                                                    'quantity': 3}), qos=1)
        assert poll(lambda: [o['order_id'] for o in cell.orders] == ['PO-1'], 10), cell.orders
        cell.state_pub.publish(String(data='running'))
        cell.joints_pub.publish(JointState(name=[f'j{i}' for i in range(6)], position=[0.1 * i for i in range(6)]))
        events = [cell.event('job_accepted', order_id='PO-1'), cell.event('job_started', order_id='PO-1'),
                  cell.event('state_change', **{'from': 'idle', 'to': 'running', 'reason': 'job'})]
        events += [cell.event('unit_complete', order_id='PO-1', unit=i, cycle_time_s=1.0, good=i != 2)
                   for i in (1, 2, 3)]
        events += [cell.event('safety_stop', reason='person in stop zone'),
                   cell.event('alarm', code='GRIP', severity='warning', text='gripper slow'),
                   cell.event('job_complete', order_id='PO-1', produced=3, good=2, scrap=1)]
        expected = {'job_order': 1, 'job_response': 3, 'equipment_state': 1, 'unit': 3, 'safety': 1, 'alarm': 1,
                    'safety_summary': 1, 'oee': 1}
        assert consumer.wait_until(lambda c: all(len(c.records.get(s, [])) >= n for s, n in expected.items()), 30), \
            (streams(consumer), bridge_output(bridge))
        final = consumer.records['job_response'][-1]
        assert final['body']['state'] == 'completed' and final['body']['scrap'] == 1
        assert all(r['cell_id'] == CELL for rs in consumer.records.values() for r in rs)
        # the record id is derived from the event id: the MES can trace every record to its event
        assert consumer.records['alarm'][0]['body']['code'] == 'GRIP'
        assert consumer.wait_until(lambda c: f'smartcell/{CELL}/state' in c.other, 10)
        assert json.loads(consumer.other[f'smartcell/{CELL}/state'])['body']['state'] == 'running'
        assert consumer.wait_until(lambda c: c.other.get(f'smartcell/{CELL}/status') == b'online', 10)

        job_oee = [r for r in consumer.records['oee'] if r['kind'] == 'OeeResult']
        assert job_oee[0]['body']['quality'] == pytest.approx(2 / 3)
        # 2 s shifts in this test: shift OEE and shift safety summaries arrive as shifts end
        assert consumer.wait_until(lambda c: any(r['kind'] == 'ShiftOee' for r in c.records.get('oee', [])), 10)
        assert any(r['body']['order_id'] == '' for r in consumer.records['safety_summary'])
        # MQTT intake: invalid -> rejected with the reason, nothing queued; valid -> mes/job_order
        publisher.publish(f'smartcell/{CELL}/orders/in', json.dumps({'order_id': 'BAD-1', 'work_master': 'bracket_a',
                                                                    'quantity': -4}), qos=1)
        assert consumer.wait_until(lambda c: f'smartcell/{CELL}/orders/rejected' in c.other, 10)
        rejection = json.loads(consumer.other[f'smartcell/{CELL}/orders/rejected'])
        assert rejection['order_id'] == 'BAD-1' and 'quantity' in rejection['reason']
        publisher.publish(f'smartcell/{CELL}/orders/in', json.dumps({'order_id': 'PO-2', 'work_master': 'bracket_b',
                                                                    'quantity': 4}), qos=1)
        assert poll(lambda: [o['order_id'] for o in cell.orders] == ['PO-1', 'PO-2'], 10), cell.orders

        # OPC UA: browse values pushed by the node, job control through the supervisor's services
        async def opcua():
            client = Client(f'opc.tcp://127.0.0.1:{opcua_port}/smartcell/')
            generate_self_signed(tmp_path / 'client.der', tmp_path / 'client.pem', 'urn:smartcell:test-client',
                                 client=True)
            client.application_uri = 'urn:smartcell:test-client'
            await client.set_security(SecurityPolicyBasic256Sha256, str(tmp_path / 'client.der'),
                                      str(tmp_path / 'client.pem'), mode=ua.MessageSecurityMode.SignAndEncrypt)
            client.set_user('mes')
            client.set_password('pw')
            async with client:
                idx = await client.get_namespace_index('urn:smartcell:mes')
                node = lambda path: client.get_node(ua.NodeId(f'{CELL}/{path}', idx))  # noqa: E731
                assert await node('State').read_value() == 'running'
                deadline = time.monotonic() + 10
                while await node(axis_path(3)).read_value() != pytest.approx(0.2) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert await node(axis_path(3)).read_value() == pytest.approx(0.2)
                assert await node('Job/Produced').read_value() == 3
                control = node('JobControl')
                status, message = await control.call_method(ua.NodeId(f'{CELL}/JobControl/Start', idx), 'PO-2')
                assert (status, message) == (0, 'start accepted')
                status, message = await control.call_method(
                    ua.NodeId(f'{CELL}/JobControl/Store', idx), json.dumps({'order_id': 'PO-3', 'work_master': 'x',
                                                                            'quantity': 1}))
                assert status == 1 and 'unknown work master' in message
                status, message = await control.call_method(ua.NodeId(f'{CELL}/JobControl/GetJobResponse', idx),
                                                            'PO-1')
                assert status == 0 and json.loads(message)['state'] == 'completed'
        asyncio.run(opcua())
        assert cell.calls == ['start']
        assert [o['order_id'] for o in cell.orders] == ['PO-1', 'PO-2']   # the invalid orders queued nothing

        def bridge_status():
            for array in list(cell.diagnostics):
                for status in array.status:
                    if status.name == 'smartcell/mes_bridge' and status.hardware_id == CELL:
                        yield {kv.key: kv.value for kv in status.values}
        assert poll(lambda: any(v.get('mqtt_link') == 'up' and v.get('mqtt_backlog_records') == '0'
                                for v in bridge_status()), 10)
    finally:
        stop(bridge)
        consumer.stop()
    output = bridge.stdout.read()
    assert bridge.returncode == 0, output
    assert audit_main(['verify', str(tmp_path / 'outbox.sqlite')]) == 0
    assert consumer.order_violations == 0 and consumer.conflicts == 0


def test_bridge_kill_9_and_restart_keeps_chain_and_delivers_once(tmp_path, cell, broker):
    consumer = DedupConsumer('127.0.0.1', broker.port, f'smartcell/{CELL}/#', client_id='mes-k9').start()
    assert consumer.subscribed.wait(10)
    first = start_bridge(tmp_path, broker.port, free_port())
    try:
        assert poll(lambda: cell.events_pub.get_subscription_count() > 0, 90)   # OPC UA start-up is slow under load
        before = [cell.event('alarm', code=f'A{i}', severity='info', text='x') for i in range(50)]
        assert consumer.wait_until(lambda c: len(c.records.get('alarm', [])) >= 10, 20)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert poll(lambda: cell.events_pub.get_subscription_count() == 0, 20)
    # the cell goes on while the bridge is dead: nobody receives these, the journal has them
    during = [cell.event('alarm', code=f'D{i}', severity='info', text='z') for i in range(20)]
    second = start_bridge(tmp_path, broker.port, free_port())
    try:
        assert poll(lambda: cell.events_pub.get_subscription_count() > 0, 90)   # OPC UA start-up is slow under load
        after = [cell.event('alarm', code=f'B{i}', severity='info', text='y') for i in range(50)]
        after_ids_seen = lambda c: {r['body']['code'] for r in c.records.get('alarm', [])} >= {  # noqa: E731
            e['code'] for e in after}
        assert consumer.wait_until(after_ids_seen, 30), streams(consumer)
    finally:
        stop(second)
        consumer.stop()
    alarms = consumer.records['alarm']
    seqs = [r['seq'] for r in alarms]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)    # in order, no record twice
    assert consumer.conflicts == 0 and consumer.order_violations == 0
    # every alarm either process stored reached the consumer, each once; the chain is intact
    from smartcell.io.outbox import iter_audit_records
    stored = [r['record_id'] for r in iter_audit_records(tmp_path / 'outbox.sqlite') if r['stream'] == 'alarm']
    assert sorted(stored) == sorted(r['record_id'] for r in alarms)
    # every event exactly once, in seq order, no gap: those before the kill, while dead (replayed), after
    stored_codes = [r['body']['code'] for r in iter_audit_records(tmp_path / 'outbox.sqlite') if r['stream'] == 'alarm']
    assert stored_codes == [e['code'] for e in before + during + after]
    assert [r['body']['code'] for r in alarms] == stored_codes
    assert cell.replay_requests, 'the restarted bridge never asked for a replay'
    assert audit_main(['verify', str(tmp_path / 'outbox.sqlite')]) == 0


def test_outbox_fill_alarm_while_mes_is_down(tmp_path, cell):
    """MQTT unreachable, small outbox: above 80 % the bridge alarms (record + /diagnostics WARN)."""
    bridge = start_bridge(tmp_path, free_port(), free_port(), opcua_enabled=False, outbox_capacity_records=100)
    try:
        assert poll(lambda: cell.events_pub.get_subscription_count() > 0, 90)   # OPC UA start-up is slow under load
        def backlog():
            for array in reversed(list(cell.diagnostics)):
                for status in array.status:
                    if status.name == 'smartcell/mes_bridge' and status.hardware_id == CELL:
                        return int({kv.key: kv.value for kv in status.values}['mqtt_backlog_records'])
            return 0
        # in chunks, each stored before the next, so a burst never outruns the publisher's history depth
        for chunk in range(0, 85, 17):
            for i in range(chunk, chunk + 17):
                cell.event('alarm', code=f'C{i}', severity='info', text='filling')
            assert poll(lambda: backlog() >= chunk + 17, 20), backlog()

        def warned():
            for array in list(cell.diagnostics):
                for status in array.status:
                    if (status.name == 'smartcell/mes_bridge' and status.hardware_id == CELL
                            and status.level == b'\x01' and 'full' in status.message):
                        return {kv.key: kv.value for kv in status.values}
            return None
        assert poll(lambda: warned() is not None, 20), cell.diagnostics[-1].status[0]
        values = warned()
        assert values['mqtt_link'] == 'down' and float(values['outbox_fill_percent']) > 80.0
    finally:
        stop(bridge)
    from smartcell.io.outbox import iter_audit_records
    alarms = [r for r in iter_audit_records(tmp_path / 'outbox.sqlite') if r['stream'] == 'alarm']
    assert len([r for r in alarms if r['body']['code'].startswith('C')]) == 85     # nothing dropped
    full = [r for r in alarms if r['body']['code'] == 'OUTBOX_FULL']
    assert len(full) == 1 and full[0]['body']['active'] is True


def test_order_sent_while_the_bridge_is_down_is_answered_when_it_returns(tmp_path, cell):
    """Real bridge process, real broker with logins: stop the bridge, publish (QoS 1), start it, get the answer."""
    with LocalBroker(workdir=tmp_path / 'broker', users={'bridge': 'b-pw', 'mes': 'm-pw'}) as broker:
        mes = DedupConsumer('127.0.0.1', broker.port, f'smartcell/{CELL}/#', client_id='mes-away')
        mes._client.username_pw_set('mes', 'm-pw')
        mes.start()
        assert mes.subscribed.wait(10)
        login = {'env_extra': {'SMARTCELL_MQTT_PASSWORD': 'b-pw'}, 'mqtt_username': 'bridge',
                 'opcua_enabled': False}
        bridge = start_bridge(tmp_path, broker.port, free_port(), **login)
        try:
            assert mes.wait_until(lambda c: c.other.get(f'smartcell/{CELL}/status') == b'online', 30), \
                bridge_output(bridge)
            # the bridge subscribes right after it is online; a first order proves the session exists
            mes._client.publish(f'smartcell/{CELL}/orders/in', json.dumps(
                {'order_id': 'PO-here', 'work_master': 'bracket_a', 'quantity': 1}), qos=1)
            assert mes.wait_until(lambda c: f'smartcell/{CELL}/orders/accepted' in c.other, 20), bridge_output(bridge)
        finally:
            stop(bridge)
        assert bridge.returncode == 0, bridge.stdout.read()
        assert mes.wait_until(lambda c: c.other.get(f'smartcell/{CELL}/status') == b'offline', 10)
        mes._client.publish(f'smartcell/{CELL}/orders/in', json.dumps(
            {'order_id': 'PO-away', 'work_master': 'bracket_a', 'quantity': 2}), qos=1).wait_for_publish(5)
        mes._client.publish(f'smartcell/{CELL}/orders/in', b'{"order_id": "PO-torn", "quan', qos=1)
        bridge = start_bridge(tmp_path, broker.port, free_port(), **login)
        try:
            assert mes.wait_until(lambda c: json.loads(c.other.get(f'smartcell/{CELL}/orders/accepted', b'{}'))
                                  .get('order_id') == 'PO-away', 30), bridge_output(bridge)
            assert mes.wait_until(lambda c: f'smartcell/{CELL}/orders/rejected' in c.other, 10)
            torn = json.loads(mes.other[f'smartcell/{CELL}/orders/rejected'])
            assert torn['order_id'] == 'PO-torn' and 'not valid JSON' in torn['reason']
            assert len(torn['message_sha256']) == 64 and torn['message_excerpt'].startswith('{"order_id"')
            assert poll(lambda: 'PO-away' in [o['order_id'] for o in cell.orders], 10), cell.orders
        finally:
            stop(bridge)
            mes.stop()


def test_forged_events_from_a_stray_node_are_refused_never_sealed_and_named(tmp_path, cell):
    """Only the supervisor's signed events reach the audit trail; forgeries are counted and named."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN)
    stray = rclpy.create_node('intruder', namespace=NAMESPACE, context=context)
    forged_pub = stray.create_publisher(String, 'cell/events', 50)
    bridge = start_bridge(tmp_path, free_port(), free_port(), opcua_enabled=False)
    try:
        assert poll(lambda: cell.events_pub.get_subscription_count() > 0
                    and forged_pub.get_subscription_count() > 0, 90), bridge_output(bridge)

        def forge(event):
            forged_pub.publish(String(data=json.dumps(event, sort_keys=True)))

        def alarm(seq, code):
            return {'event_id': str(uuid.uuid4()), 'cell_id': CELL, 'seq': seq, 'type': 'alarm', 'stamp': 1.0,
                    'code': code, 'severity': 'critical', 'text': 'forged'}
        forge(alarm(1, 'F-UNSIGNED'))                                           # no auth at all
        other_key = alarm(1, 'F-OTHER-KEY')
        forge({**other_key, 'auth': sign_event(bytes(32), other_key)})         # another cell's key
        genuine = [cell.event('alarm', code=f'G{i}', severity='info', text='real') for i in range(3)]
        assert poll(lambda: len(sealed_codes(tmp_path)) >= 3, 20), bridge_output(bridge)
        forge({**genuine[0], 'seq': 4, 'code': 'F-ALTERED'})                 # a genuine signature, altered fields
        forge(json.loads(cell.published[1]))                                   # a verbatim replay on the live topic
        genuine += [cell.event('alarm', code=f'G{i}', severity='info', text='real') for i in range(3, 5)]
        assert poll(lambda: len(sealed_codes(tmp_path)) >= 5, 20), bridge_output(bridge)

        def refused():
            for array in reversed(list(cell.diagnostics)):
                for status in array.status:
                    if status.name == 'smartcell/mes_bridge' and status.hardware_id == CELL:
                        values = {kv.key: kv.value for kv in status.values}
                        if int(values.get('cell_events_refused', 0)) >= 4:
                            return status, values
            return None
        assert poll(lambda: refused() is not None, 20), cell.diagnostics[-1].status[0]
        status, values = refused()
        assert status.level == b'\x02' and 'refused, not sealed' in status.message
        assert (values['cell_events_refused'], values['cell_events_refused_unsigned'],
                values['cell_events_refused_bad_signature'], values['cell_events_refused_replayed']) == \
            ('4', '1', '2', '1'), values

        def stray_named():      # the ROS graph names the stray publisher of cell/events (once discovered)
            for array in list(cell.diagnostics):
                for status in array.status:
                    values = {kv.key: kv.value for kv in status.values}
                    if status.name == 'smartcell/mes_bridge' and status.level == b'\x02' and \
                            f'{NAMESPACE}/intruder' in values.get('cell_events_publishers', '') and \
                            f'{NAMESPACE}/intruder' in status.message:
                        return True
            return False
        assert poll(stray_named, 20), values
    finally:
        stop(bridge)
        stray.destroy_node()
        rclpy.shutdown(context=context)
    output = bridge.stdout.read()
    assert bridge.returncode == 0, output
    assert 'cell/events message refused, not sealed (unsigned)' in output, output   # then throttled to 1/s
    assert sealed_codes(tmp_path) == [e['code'] for e in genuine]      # the supervisor's, each once, in order
    assert audit_main(['verify', str(tmp_path / 'outbox.sqlite')]) == 0


def sealed_codes(tmp_path):
    from smartcell.io.outbox import iter_audit_records
    if not (tmp_path / 'outbox.sqlite').exists():
        return []
    return [r['body']['code'] for r in iter_audit_records(tmp_path / 'outbox.sqlite') if r['stream'] == 'alarm']
