"""Outbox + MQTT against a real broker (amqtt or mosquitto subprocess) and a deduplicating consumer."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartcell.core.mes.records import Alarm, EquipmentState, JobResponse, SafetyEvent, make_record
from smartcell.io.broker import LocalBroker, TcpLink
from smartcell.io.mqtt import DedupConsumer, MqttSettings, MqttTopics, MqttTransport, order_answer
from smartcell.io.outbox import Dispatcher, Outbox, OutboxConfig, TransportDown

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outbox_child import record  # noqa: E402 - the child's own record maker, so ids match by construction

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture
def broker(tmp_path):
    with LocalBroker(workdir=tmp_path / 'broker') as running:
        yield running


def consumer_for(port, topic_filter, client_id='dedup'):
    consumer = DedupConsumer('127.0.0.1', port, topic_filter, client_id=client_id).start()
    assert consumer.subscribed.wait(10.0), 'consumer did not subscribe'
    return consumer


def mixed_record(i):
    bodies = (JobResponse(order_id=f'O{i}', state='running', produced=i), SafetyEvent(kind='slowdown', duration_s=1.0),
              EquipmentState(state='running'), Alarm(code='A', severity='info', text=str(i)))
    return make_record(bodies[i % 4], 'cell-1', float(i), source_id=f'evt-{i}')


def assert_exactly_once_in_order(consumer, expected_ids):
    by_stream = consumer.records
    got = [r['record_id'] for records in by_stream.values() for r in records]
    assert sorted(got) == sorted(expected_ids)
    for stream, records in by_stream.items():
        seqs = [r['seq'] for r in records]
        assert seqs == list(range(1, len(seqs) + 1)), f'stream {stream} out of order or with gaps'
    assert consumer.order_violations == 0 and consumer.conflicts == 0


def test_broker_down_for_a_long_stretch_then_back(tmp_path, broker):
    link = TcpLink(broker.port).restore()      # the producer reaches the broker through this link
    consumer = consumer_for(broker.port, 'test/cell-1/#')
    box = Outbox(tmp_path / 'o.sqlite', ['mqtt'],
                 OutboxConfig(batch_size=200, backoff_initial_s=0.05, backoff_max_s=0.4))
    transport = MqttTransport(MqttSettings(port=link.port, client_id='producer', reconnect_max_s=1),
                              MqttTopics('test', 'cell-1')).start()
    dispatcher = Dispatcher(box, [transport])
    box.on_append = dispatcher.wake
    dispatcher.start()
    try:
        records = [mixed_record(i) for i in range(4000)]
        box.append_many(records[:200])
        assert consumer.wait_until(lambda c: len(c.seen) == 200, 20.0)
        deadline = time.monotonic() + 10
        while box.backlog('mqtt') and time.monotonic() < deadline:
            time.sleep(0.02)        # polling: the consumer can see a record before its PUBACK reaches the producer
        assert box.backlog('mqtt') == 0
        broker.kill()                                       # broker dies (SIGKILL) ...
        link.cut()
        for start in range(200, 4000, 100):                 # ... while the cell keeps producing
            box.append_many(records[start:start + 100])
        deadline = time.monotonic() + 30
        while dispatcher.links['mqtt'].failures < 6 and time.monotonic() < deadline:
            time.sleep(0.05)                                # polling: the outage lasts until 6 retries failed
        assert dispatcher.links['mqtt'].failures >= 6 and not dispatcher.links['mqtt'].up
        assert box.backlog('mqtt') == 3800
        assert not consumer.subscribed.is_set()             # the consumer saw the broker go too
        broker.start()                                      # same port
        assert consumer.subscribed.wait(20.0), 'consumer did not come back'
        link.restore()                                      # producer's network back after the consumer
        assert consumer.wait_until(lambda c: len(c.seen) == 4000, 60.0), f'got {consumer.count()} of 4000'
        assert_exactly_once_in_order(consumer, [r.record_id for r in records])
        deadline = time.monotonic() + 10
        while box.backlog('mqtt') and time.monotonic() < deadline:
            time.sleep(0.02)                                # polling: the last PUBACKs may still be on their way
        assert box.backlog('mqtt') == 0 and dispatcher.links['mqtt'].up
    finally:
        dispatcher.stop()
        transport.stop()
        consumer.stop()
        link.cut()


def test_retained_state_last_will_and_order_intake(tmp_path, broker):
    received = []
    topics = MqttTopics('test', 'cell-2')
    transport = MqttTransport(MqttSettings(port=broker.port, client_id='p2', keepalive_s=5), topics,
                              on_order=received.append).start()
    state = make_record(EquipmentState(state='paused', previous='running'), 'cell-2', 1.0, source_id='s1')
    transport.publish_state(state.to_json())
    consumer = consumer_for(broker.port, 'test/cell-2/#', client_id='watcher')
    try:
        assert consumer.wait_until(lambda c: c.other.get(topics.status) == b'online'
                                   and topics.state in c.other, 10.0)
        import json
        assert json.loads(consumer.other[topics.state])['body']['state'] == 'paused'
        consumer._client.publish(topics.orders_in, b'{"order_id": "X"}', qos=1)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received == [b'{"order_id": "X"}']
        transport.answer_order(order_answer(b'{"order_id": "X"}', 'X', 'missing field quantity'))
        assert consumer.wait_until(lambda c: topics.orders_rejected in c.other, 10.0)
        assert json.loads(consumer.other[topics.orders_rejected])['reason'] == 'missing field quantity'
        # the producer vanishes without DISCONNECT: the broker publishes its last will
        transport._client._sock.close()
        transport._client.loop_stop()
        assert consumer.wait_until(lambda c: c.other.get(topics.status) == b'offline', 20.0)
    finally:
        consumer.stop()


def test_kill_9_mid_stream_loses_nothing_and_consumer_sees_each_once(tmp_path, broker):
    count = 3000
    db = tmp_path / 'k9.sqlite'
    consumer = consumer_for(broker.port, 'test/cell-k9/#')
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    command = [sys.executable, str(HERE / 'outbox_child.py'), str(db), str(broker.port), str(count)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert consumer.wait_until(lambda c: len(c.seen) >= count // 4, 60.0)
        first.send_signal(signal.SIGKILL)                    # mid-stream, no clean-up of any kind
        first.wait(10)
        at_kill = consumer.count()
        assert at_kill < count, 'the kill came too late to test anything'
        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert second.stdout.readline().strip() == 'drained'
            assert consumer.wait_until(lambda c: len(c.seen) == count, 30.0), f'got {consumer.count()} of {count}'
            assert_exactly_once_in_order(consumer, [record(i).record_id for i in range(count)])
        finally:
            second.kill()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        consumer.stop()


def test_tls_and_credentials(tmp_path):
    from smartcell.io.broker import self_signed_tls
    self_signed_tls(tmp_path / 'broker.pem', tmp_path / 'broker.key')
    with LocalBroker(workdir=tmp_path / 'broker', tls_cert=tmp_path / 'broker.pem', tls_key=tmp_path / 'broker.key',
                     users={'cell': 'cell-pw'}) as broker:
        topics = MqttTopics('tls', 'cell-3')
        secure = MqttSettings(port=broker.port, client_id='tls-ok', tls=True, ca_file=str(tmp_path / 'broker.pem'),
                              username='cell', password='cell-pw')
        good = MqttTransport(secure, topics).start()
        bad = MqttTransport(MqttSettings(**{**secure.__dict__, 'client_id': 'tls-bad', 'password': 'wrong'}),
                            topics).start()
        plain = MqttTransport(MqttSettings(port=broker.port, client_id='plain', username='cell', password='cell-pw'),
                              topics).start()
        try:
            deadline = time.monotonic() + 20
            while not good.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert good.connected, good.last_error
            box = Outbox(tmp_path / 'o.sqlite', ['mqtt'])
            box.append(mixed_record(0))
            assert good.send(box.pending('mqtt')) == 1                 # PUBACK over TLS
            deadline = time.monotonic() + 10
            while not (bad.last_error and plain.last_error) and time.monotonic() < deadline:
                time.sleep(0.05)
            # each differs from the good one in one thing only: the password, or TLS
            assert not bad.connected and not plain.connected
            with pytest.raises(TransportDown):
                bad.send(box.pending('mqtt'))
        finally:
            for transport in (good, bad, plain):
                transport.stop()


def wait_for(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)    # polling a condition, bounded by the deadline
    return condition()


@pytest.fixture
def broker_with_logins(tmp_path):
    """A broker with user logins, as in production (amqtt queues for authenticated sessions only)."""
    with LocalBroker(workdir=tmp_path / 'broker-logins', users={'bridge': 'b-pw', 'mes': 'm-pw'}) as running:
        yield running


def mes_client(port, topic_filter, client_id):
    consumer = DedupConsumer('127.0.0.1', port, topic_filter, client_id=client_id)
    consumer._client.username_pw_set('mes', 'm-pw')
    consumer.start()
    assert consumer.subscribed.wait(10)
    return consumer


def test_orders_sent_while_the_bridge_is_away_arrive_when_it_returns(broker_with_logins):
    """Persistent session + QoS 1 subscription: the broker queues the order for the absent bridge."""
    port = broker_with_logins.port
    topics = MqttTopics('test', 'cell-p')
    received = []
    settings = MqttSettings(port=port, keepalive_s=5, username='bridge', password='b-pw')
    first = MqttTransport(settings, topics, on_order=received.append).start()
    mes = mes_client(port, 'test/cell-p/status', client_id='mes')
    try:
        assert first.orders_subscribed.wait(10.0)
        first.stop()                                   # the bridge goes away (its session stays)
        assert mes.wait_until(lambda c: c.other.get(topics.status) == b'offline', 10.0)
        mes._client.publish(topics.orders_in, b'{"order_id": "PO-away"}', qos=1).wait_for_publish(5.0)
        assert received == []
        again = MqttTransport(settings, topics, on_order=received.append).start()   # same client id
        try:
            assert wait_for(lambda: received == [b'{"order_id": "PO-away"}'], 15.0), received
        finally:
            again.stop()
    finally:
        mes.stop()
    assert topics.client_id == 'smartcell-test-cell-p-bridge'


def test_a_clean_session_would_lose_it(broker_with_logins):
    """The control experiment: without the persistent session the same order is never delivered."""
    port = broker_with_logins.port
    topics = MqttTopics('test', 'cell-c')
    received = []
    settings = MqttSettings(port=port, keepalive_s=5, persistent_session=False, client_id='clean',
                            username='bridge', password='b-pw')
    first = MqttTransport(settings, topics, on_order=received.append).start()
    mes = mes_client(port, 'test/cell-c/status', client_id='mes-c')
    try:
        assert first.orders_subscribed.wait(10.0)
        first.stop()
        assert mes.wait_until(lambda c: c.other.get(topics.status) == b'offline', 10.0)
        mes._client.publish(topics.orders_in, b'{"order_id": "PO-lost"}', qos=1).wait_for_publish(5.0)
        again = MqttTransport(settings, topics, on_order=received.append).start()
        try:
            assert mes.wait_until(lambda c: c.other.get(topics.status) == b'online', 10.0)
            assert not wait_for(lambda: received, 2.0)
        finally:
            again.stop()
    finally:
        mes.stop()


@pytest.mark.parametrize('payload,order_id,named', [
    (b'{"order_id": "PO-7", "quantity": ', '', 'PO-7'),          # cut short: the id is still readable
    (b'\xff\xfe not json', '', ''),
    (b'{"order_id": "PO-8", "quantity": 0}', 'PO-8', 'PO-8'),
])
def test_every_answer_names_the_order_or_the_message(payload, order_id, named):
    import hashlib
    answer = order_answer(payload, order_id, 'refused')
    assert answer['order_id'] == named and answer['reason'] == 'refused'
    if order_id:
        assert set(answer) == {'order_id', 'reason'}
    else:
        assert answer['message_sha256'] == hashlib.sha256(payload).hexdigest()
        assert answer['message_excerpt'] == payload[:80].decode('utf-8', errors='replace')
    assert order_answer(payload, 'PO-9', '') == {'order_id': 'PO-9', 'reason': ''}
