"""Child process for the kill -9 test: appends deterministic records and delivers them to MQTT.

Usage: python outbox_child.py DB PORT COUNT. Every run re-appends records 0..COUNT-1 with ids derived
from 'evt-<i>' (a source replaying its events); already stored ones are no-ops. Prints 'drained'
when its backlog is empty, then keeps running until killed.
"""
import sys
import time

from smartcell.core.mes.records import EquipmentState, UnitRecord, make_record
from smartcell.io.mqtt import MqttSettings, MqttTopics, MqttTransport
from smartcell.io.outbox import Dispatcher, Outbox, OutboxConfig


def record(i: int):
    body = (UnitRecord(order_id='PO-K9', unit=i, cycle_time_s=1.0, good=True) if i % 3
            else EquipmentState(state='running', reason=f'tick {i}'))
    return make_record(body, 'cell-k9', float(i), source_id=f'evt-{i}')


def main() -> None:
    db, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    box = Outbox(db, ['mqtt'], OutboxConfig(batch_size=50, backoff_initial_s=0.05, backoff_max_s=0.2))
    transport = MqttTransport(MqttSettings(port=port, client_id='k9-producer'), MqttTopics('test', 'cell-k9')).start()
    dispatcher = Dispatcher(box, [transport])
    box.on_append = dispatcher.wake
    dispatcher.start()
    for i in range(count):
        box.append(record(i))
        time.sleep(0.0005)     # pacing so that the parent's kill lands mid-stream
    while box.backlog() > 0:
        time.sleep(0.01)
    print('drained', flush=True)
    while True:
        time.sleep(1.0)


if __name__ == '__main__':
    main()
