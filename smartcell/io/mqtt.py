"""MQTT transport (paho-mqtt 2.x): records as JSON with QoS 1, retained cell state, last will, job intake.

Topics (prefix and cell id are parameters; docs/mes.md has the table):
  <prefix>/<cell_id>/<stream>           records (QoS 1, not retained), one JSON `Record` per message
  <prefix>/<cell_id>/state              retained: the latest EquipmentState record
  <prefix>/<cell_id>/status             retained: 'online', or the last will 'offline'
  <prefix>/<cell_id>/orders/in          job orders from the MES (JSON JobOrder), subscribed with QoS 1
  <prefix>/<cell_id>/orders/accepted    {"order_id", "reason": ""} for a valid order
  <prefix>/<cell_id>/orders/rejected    {"order_id", "reason"} for an invalid one; when the message named no
                                        readable order id, also "message_sha256" and "message_excerpt"

Delivery is at-least-once; consumers deduplicate on `record_id` (see `DedupConsumer`).

The bridge keeps a persistent session (clean_session false) under a stable client id, so the broker
queues QoS 1 orders published while the bridge is away and hands them over when it reconnects.
The session exists from the bridge's first connection on; two bridges must never share a client id
(the broker would disconnect one whenever the other connects): the id is derived from the cell id.
"""
from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartcell.core.mes.records import Stream
from smartcell.io.outbox import Pending, TransportDown

QOS = 1


@dataclass(frozen=True)
class MqttTopics:
    prefix: str
    cell_id: str

    @property
    def base(self) -> str:
        return f'{self.prefix}/{self.cell_id}'

    def stream(self, stream: str) -> str:
        return f'{self.base}/{stream}'

    @property
    def state(self) -> str:
        return f'{self.base}/state'

    @property
    def status(self) -> str:
        return f'{self.base}/status'

    @property
    def orders_in(self) -> str:
        return f'{self.base}/orders/in'

    @property
    def orders_accepted(self) -> str:
        return f'{self.base}/orders/accepted'

    @property
    def orders_rejected(self) -> str:
        return f'{self.base}/orders/rejected'

    @property
    def orders_command(self) -> str:
        """Job control: {"command": "Cancel"|"Abort"|"Start"|"Pause"|"Resume"|"GetJobResponse", "order_id": ...}
        or {"command": "StoreAndStart", "order": {...}}."""
        return f'{self.base}/orders/command'

    @property
    def orders_command_answer(self) -> str:
        return f'{self.base}/orders/command/answer'

    @property
    def client_id(self) -> str:
        """The bridge's default client id: one per cell and prefix, stable across restarts."""
        return f'smartcell-{self.prefix}-{self.cell_id}-bridge'[:MAX_CLIENT_ID]


MAX_CLIENT_ID = 128                     # brokers must accept 23 characters; mosquitto and amqtt take more
EXCERPT_CHARS = 80
_ORDER_ID_IN_TEXT = re.compile(rb'"order_id"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._:-]{0,63})"')


def order_answer(payload: bytes, order_id: str, reason: str) -> dict[str, str]:
    """The answer to an order message. It names the order, or, when the message could not be read
    that far, the order id found in its text (if any) plus its SHA-256 and an excerpt, so the MES
    can tell which of its messages was refused."""
    answer = {'order_id': order_id, 'reason': reason}
    if reason and not order_id:
        found = _ORDER_ID_IN_TEXT.search(payload)
        answer['order_id'] = found.group(1).decode() if found else ''
        answer['message_sha256'] = hashlib.sha256(payload).hexdigest()
        answer['message_excerpt'] = payload[:EXCERPT_CHARS].decode('utf-8', errors='replace')
    return answer


@dataclass(frozen=True)
class MqttSettings:
    host: str = '127.0.0.1'
    port: int = 1883
    client_id: str = ''                # empty: smartcell-<prefix>-<cell_id>-bridge (see MqttTopics.client_id)
    persistent_session: bool = True    # clean_session false: the broker keeps subscriptions and queued QoS 1
    keepalive_s: int = 30
    tls: bool = False
    ca_file: str = ''                  # PEM; empty = system CAs
    cert_file: str = ''                # PEM, mutual TLS
    key_file: str = ''
    username: str = ''
    password: str = ''
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    ack_timeout_s: float = 10.0        # longest wait for PUBACKs of one batch, s


def make_client(settings: MqttSettings, client_id: str) -> paho.Client:
    """A paho client with TLS and credentials applied (not connected yet)."""
    if settings.persistent_session and not client_id:
        raise ValueError('a persistent MQTT session needs a client id')
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv311, clean_session=not settings.persistent_session)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file or None, certfile=settings.cert_file or None,
                       keyfile=settings.key_file or None, cert_reqs=ssl.CERT_REQUIRED,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    client.reconnect_delay_set(min_delay=max(1, int(settings.reconnect_min_s)), max_delay=int(settings.reconnect_max_s))
    client.max_inflight_messages_set(1000)
    return client


class MqttTransport:
    """Outbox transport: publishes stored records in order and reports how many the broker acknowledged.

    Also owns the retained state/status topics and the order intake subscription. paho's network
    thread does the I/O; `send` runs on the outbox dispatcher thread and never on a ROS callback.
    """

    name = 'mqtt'

    def __init__(self, settings: MqttSettings, topics: MqttTopics,
                 on_order: Callable[[bytes], None] | None = None,
                 on_command: Callable[[bytes], None] | None = None) -> None:
        self.settings = settings
        self.topics = topics
        self._on_order = on_order
        self._on_command = on_command
        self._retained_state: str | None = None
        self._lock = threading.Lock()
        self._client = make_client(settings, settings.client_id or topics.client_id)
        self._client.will_set(topics.status, 'offline', qos=QOS, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self.last_error = ''
        self.orders_subscribed = threading.Event()   # the broker acknowledged the orders subscription

    # ------------------------------------------------------------ lifecycle

    def start(self) -> 'MqttTransport':
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        if self._client.is_connected():
            self._client.publish(self.topics.status, 'offline', qos=QOS, retain=True).wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f'connect refused: {reason_code}'
            return
        self.last_error = ''
        client.publish(self.topics.status, 'online', qos=QOS, retain=True)
        topics = [(t, QOS) for t, handler in ((self.topics.orders_in, self._on_order),
                                                (self.topics.orders_command, self._on_command)) if handler]
        if topics:
            client.subscribe(topics)
        with self._lock:
            state = self._retained_state
        if state is not None:
            client.publish(self.topics.state, state, qos=QOS, retain=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.last_error = f'disconnected: {reason_code}'
        self.orders_subscribed.clear()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if all(not code.is_failure for code in reason_codes):
            self.orders_subscribed.set()
        else:
            self.last_error = f'orders subscription refused: {reason_codes}'

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topics.orders_in and self._on_order is not None:
            self._on_order(message.payload)
        elif message.topic == self.topics.orders_command and self._on_command is not None:
            self._on_command(message.payload)

    # ------------------------------------------------------------ publishing

    def send(self, items: Sequence[Pending]) -> int:
        """Publish with QoS 1 and wait for the PUBACKs; returns the acknowledged prefix length."""
        if not self._client.is_connected():
            raise TransportDown(self.last_error or f'not connected to {self.settings.host}:{self.settings.port}')
        infos = []
        for item in items:
            info = self._client.publish(self.topics.stream(item.stream), item.json, qos=QOS)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                break
            infos.append(info)
        deadline = time.monotonic() + self.settings.ack_timeout_s
        acked = 0
        for info in infos:
            while not info.is_published():
                if time.monotonic() > deadline or not self._client.is_connected():
                    break
                info.wait_for_publish(timeout=0.05)
            else:
                acked += 1
                continue
            break
        self._retain_state(items[:acked])
        return acked

    def _retain_state(self, delivered: Sequence[Pending]) -> None:
        """The newest delivered cell state becomes the retained `state` message: the same record (seq,
        hash) as on the equipment_state stream, so the retained copy went through the outbox too."""
        for item in reversed(delivered):
            if item.stream == Stream.EQUIPMENT_STATE.value and json.loads(item.json)['body'].get('state'):
                self.publish_state(item.json)
                return

    def publish_state(self, record_json: str) -> None:
        """Retained latest cell state (re-published on every reconnect)."""
        with self._lock:
            self._retained_state = record_json
        if self._client.is_connected():
            self._client.publish(self.topics.state, record_json, qos=QOS, retain=True)

    def answer_command(self, answer: dict[str, Any]) -> None:
        """Reply to a job-control command on orders/command/answer (QoS 1)."""
        self._client.publish(self.topics.orders_command_answer, json.dumps(answer, sort_keys=True), qos=QOS)

    def answer_order(self, answer: dict[str, str]) -> None:
        """Reply on orders/rejected (reason given) or orders/accepted (empty reason); see `order_answer`."""
        topic = self.topics.orders_rejected if answer['reason'] else self.topics.orders_accepted
        self._client.publish(topic, json.dumps(answer, sort_keys=True), qos=QOS)


@dataclass
class DedupConsumer:
    """Reference MES-side consumer: exactly-once at the consumer by deduplicating on `record_id`.

    Keeps the first copy of each record, counts duplicates, and counts order violations (a record
    whose per-stream seq is not above the last one seen first-time on that stream).
    """

    host: str
    port: int
    topic_filter: str
    client_id: str = 'smartcell-dedup-consumer'
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # stream -> records, first copies
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    order_violations: int = 0
    conflicts: int = 0                 # duplicates whose content differs from the first copy (must be 0)
    other: dict[str, bytes] = field(default_factory=dict)      # non-record topics: last payload
    received_at: dict[str, float] = field(default_factory=dict)  # record_id -> time.time() of first copy

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[str, bytes] = {}
        self.subscribed = threading.Event()
        self._client = make_client(MqttSettings(host=self.host, port=self.port, reconnect_min_s=0.1,
                                                reconnect_max_s=1.0, persistent_session=False), self.client_id)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self.subscribed.set()
        self._client.on_disconnect = lambda *args: self.subscribed.clear()
        self._client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic_filter, QOS)

    def start(self) -> 'DedupConsumer':
        self._client.connect_async(self.host, self.port, keepalive=10)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client, userdata, message) -> None:
        try:
            record = json.loads(message.payload)
            record_id, stream, seq = record['record_id'], record['stream'], int(record['seq'])
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.other[message.topic] = message.payload
            return
        with self._lock:
            if message.topic.rsplit('/', 1)[-1] != stream:     # the retained state copy, not the stream
                self.other[message.topic] = message.payload
                return
            if record_id in self.seen:
                self.duplicates += 1
                self.conflicts += int(self._first[record_id] != message.payload)
                return
            self.seen.add(record_id)
            self._first[record_id] = message.payload
            self.received_at[record_id] = time.time()
            stream_records = self.records.setdefault(stream, [])
            if stream_records and seq <= stream_records[-1]['seq']:
                self.order_violations += 1
            stream_records.append(record)

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def wait_until(self, predicate: Callable[['DedupConsumer'], bool], timeout_s: float) -> bool:
        """Poll a condition on the consumer with a deadline (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.02)   # polling for a condition, bounded by the deadline
        with self._lock:
            return predicate(self)
