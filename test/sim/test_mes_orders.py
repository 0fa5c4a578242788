"""Orders through the cell's queue with the real processes (twin, scanner, arm, supervisor, MES bridge),
a real MQTT broker and an asyncua client: Store, Cancel (waiting only), Start, StoreAndStart (atomic),
Abort (ends aborted), duplicates; the job responses follow the ISA-95 state the cell reports."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time

import pytest

pytest.importorskip('pybullet')
pytest.importorskip('rclpy')
pytestmark = [pytest.mark.ros, pytest.mark.twin, pytest.mark.slow]

from asyncua import Client, ua  # noqa: E402
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256  # noqa: E402

from smartcell.io.broker import LocalBroker, free_port  # noqa: E402
from smartcell.io.mqtt import QOS, DedupConsumer, MqttSettings, make_client  # noqa: E402
from smartcell.io.opcua import generate_self_signed, hash_password  # noqa: E402
from smartcell.tools.cell_processes import CellProcesses, isolated_ros_env  # noqa: E402
from smartcell.tools.sim import node_overrides, parse_args  # noqa: E402
from smartcell.topology import nodes_for  # noqa: E402

CELL = 'cell-01'           # the shipped cell.yaml's cell id


class Mes:
    """The MES side over MQTT: sends orders and commands, collects every answer."""

    def __init__(self, port: int) -> None:
        self.answers: list[dict] = []
        self.ready = threading.Event()
        self._client = make_client(MqttSettings(port=port, persistent_session=False), 'mes-orders-test')
        self._client.on_connect = lambda c, *a: c.subscribe(f'smartcell/{CELL}/orders/#', QOS)
        self._client.on_subscribe = lambda *a: self.ready.set()
        self._client.on_message = self._on_message
        self._client.connect_async('127.0.0.1', port)
        self._client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic.endswith(('/accepted', '/rejected', '/answer')):
            self.answers.append({'topic': message.topic.rsplit('/', 1)[-1], **json.loads(message.payload)})

    def send(self, topic: str, payload: dict) -> None:
        self._client.publish(f'smartcell/{CELL}/orders/{topic}', json.dumps(payload), qos=QOS).wait_for_publish(5)

    def command(self, command: str, timeout_s: float = 30.0, **fields) -> dict:
        count = len([a for a in self.answers if a['topic'] == 'answer'])
        self.send('command', {'command': command, **fields})
        assert wait(lambda: len([a for a in self.answers if a['topic'] == 'answer']) > count, timeout_s), command
        return [a for a in self.answers if a['topic'] == 'answer'][count]

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)      # polling a condition with a deadline
    return condition()


def order(order_id: str, quantity: int = 2) -> dict:
    return {'order_id': order_id, 'work_master': 'demo', 'quantity': quantity}


def test_orders_queue_cancel_start_abort_and_store_and_start(tmp_path):
    log_dir = tmp_path / 'run'
    options = parse_args(['--no-progress', '--duration', '600', '--seed', '3', '--scenario', 'empty',
                          '--without', 'sensors', '--log-dir', str(log_dir)])
    opcua_port = free_port()
    options = dataclasses.replace(options, opcua_port=opcua_port)
    users = tmp_path / 'users.yaml'
    users.write_text(f'mes: {{password_hash: "{hash_password("pw", iterations=1000)}", role: operator}}\n')
    with LocalBroker(workdir=tmp_path / 'broker') as broker:
        overrides = node_overrides(options)
        overrides['supervisor']['auto_start'] = False
        overrides['mes_bridge'].update(mqtt_enabled=True, mqtt_port=broker.port, opcua_users_file=str(users),
                                       opcua_security='both')
        consumer = DedupConsumer('127.0.0.1', broker.port, f'smartcell/{CELL}/#', client_id='mes-jr').start()
        mes = Mes(broker.port)
        processes = CellProcesses(log_dir, isolated_ros_env())
        try:
            assert consumer.subscribed.wait(10) and mes.ready.wait(10)
            processes.start_nodes(nodes_for(sim=True, groups=options.groups), options.config, overrides)

            def states(order_id):
                return [r['body']['state'] for r in consumer.records.get('job_response', [])
                        if r['body']['order_id'] == order_id]

            def reaches(order_id, state, timeout_s=60.0):
                ok = consumer.wait_until(lambda c: state in states(order_id), timeout_s)
                processes.check_alive()
                return ok

            # two orders queue (the bridge answers at once; the cell's acceptance follows as 'waiting')
            assert wait(lambda: 'mes_bridge up' in (log_dir / 'mes_bridge.log').read_text(), 120)
            mes.send('in', order('PO-A'))
            mes.send('in', order('PO-B'))
            assert reaches('PO-A', 'waiting', 120) and reaches('PO-B', 'waiting'), consumer.records
            # a duplicate is refused on its channel; PO-A's response never flips to rejected
            mes.send('in', order('PO-A', quantity=5))
            assert wait(lambda: any(a['topic'] == 'rejected' and a['order_id'] == 'PO-A' for a in mes.answers), 30)
            # Cancel: only a waiting order (over OPC UA, logged in on the encrypted endpoint)
            opcua = asyncio.run(call_opcua(tmp_path, opcua_port, [('Cancel', 'PO-B'), ('Cancel', 'PO-B'),
                                                                  ('Cancel', 'PO-NONE')]))
            assert opcua[0][0] == 0 and 'cancelled' in opcua[0][1], opcua
            assert opcua[1][0] == 1 and 'only a waiting order' in opcua[1][1], opcua
            assert opcua[2][0] == 1 and 'PO-NONE' in opcua[2][1], opcua
            assert reaches('PO-B', 'cancelled')
            # Start runs the oldest waiting order
            answer = mes.command('Start')
            assert answer['ok'], answer
            assert reaches('PO-A', 'running')
            cancel_running = mes.command('Cancel', order_id='PO-A')
            assert not cancel_running['ok'] and 'running' in cancel_running['message']
            # StoreAndStart while a job runs: refused before storing, so the id stays unused
            refused = mes.command('StoreAndStart', order=order('PO-C'))
            assert not refused['ok'] and 'not stored' in refused['message'] and refused['order_id'] == 'PO-C'
            abort_waiting = mes.command('Abort', order_id='PO-B')
            assert not abort_waiting['ok'] and 'cancelled' in abort_waiting['message']
            # Abort ends the running order 'aborted' (cell/stop)
            aborted = mes.command('Abort', order_id='PO-A')
            assert aborted['ok'], aborted
            assert reaches('PO-A', 'aborted')
            assert 'rejected' not in states('PO-A')
            # once idle, StoreAndStart stores and starts PO-C: its id had not been burnt
            assert wait(lambda: mes.command('GetJobResponse', order_id='PO-A')['ok'], 10)
            started = {}

            def store_and_start():
                started.update(mes.command('StoreAndStart', order=order('PO-C')))
                return started['ok'] or 'not idle' not in started['message']
            assert wait(store_and_start, 60) and started['ok'], started
            assert reaches('PO-C', 'running')
            assert states('PO-C')[:2] == ['waiting', 'running']
            assert consumer.conflicts == 0 and consumer.order_violations == 0
            # the retained state is a record that went through the outbox: stored, numbered, hashed
            assert consumer.wait_until(lambda c: f'smartcell/{CELL}/state' in c.other, 30)
            retained = json.loads(consumer.other[f'smartcell/{CELL}/state'])
            assert retained['stream'] == 'equipment_state' and retained['seq'] > 0 and retained['hash']
            assert retained['record_id'] in consumer.seen
        finally:
            processes.stop()
            consumer.stop()
            mes.stop()


async def call_opcua(tmp_path, port: int, calls: list[tuple[str, str]]) -> list[tuple[int, str]]:
    client = Client(f'opc.tcp://127.0.0.1:{port}/smartcell/')
    generate_self_signed(tmp_path / 'client.der', tmp_path / 'client.pem', 'urn:smartcell:test-client', client=True)
    client.application_uri = 'urn:smartcell:test-client'
    await client.set_security(SecurityPolicyBasic256Sha256, str(tmp_path / 'client.der'), str(tmp_path / 'client.pem'),
                              mode=ua.MessageSecurityMode.SignAndEncrypt)
    client.set_user('mes')
    client.set_password('pw')
    async with client:
        idx = await client.get_namespace_index('urn:smartcell:mes')
        control = client.get_node(ua.NodeId(f'{CELL}/JobControl', idx))
        return [tuple(await control.call_method(ua.NodeId(f'{CELL}/JobControl/{name}', idx), argument))
                for name, argument in calls]
