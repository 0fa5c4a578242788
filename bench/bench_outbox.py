"""Outbox benchmark: ingest rate, and drain rate after an outage of 100,000 records.

Prints records/s for: single-record appends (one transaction each), batched appends (the node's
writer thread), and draining a 100,000-record backlog (a) through the dispatcher into a null
transport (outbox cost alone) and (b) into a real local MQTT broker with a deduplicating consumer.
Run: .venv/bin/python bench/bench_outbox.py [--records 100000] [--skip-mqtt]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcell.core.mes.records import EquipmentState, UnitRecord, make_record  # noqa: E402
from smartcell.io.broker import LocalBroker  # noqa: E402
from smartcell.io.mqtt import DedupConsumer, MqttSettings, MqttTopics, MqttTransport  # noqa: E402
from smartcell.io.outbox import Dispatcher, Outbox, OutboxConfig, OutboxWriter  # noqa: E402


def records(n: int, tag: str):
    return [make_record(UnitRecord(order_id='PO-B', unit=i, cycle_time_s=30.0, good=True) if i % 4
                        else EquipmentState(state='running'), 'bench', float(i), source_id=f'{tag}-{i}')
            for i in range(n)]


class NullTransport:
    name = 'mqtt'

    def send(self, items):
        return len(items)


_cpu_mark = [time.process_time()]


def rate(count: int, seconds: float) -> str:
    """Wall-clock rate, plus the rate per CPU-second of this process (less sensitive to a loaded machine)."""
    cpu = time.process_time() - _cpu_mark[0]
    _cpu_mark[0] = time.process_time()
    return (f'{count / seconds:,.0f} records/s ({count:,} in {seconds:.2f} s wall; '
            f'{count / max(cpu, 1e-9):,.0f} records per CPU-second)')


def mark() -> float:
    """Start timing: wall clock returned, CPU clock remembered for `rate`."""
    _cpu_mark[0] = time.process_time()
    return time.perf_counter()


def drain(box: Outbox, transport, expect: int, consumer: DedupConsumer | None = None) -> float:
    dispatcher = Dispatcher(box, [transport])
    start = mark()
    dispatcher.start()
    while box.backlog() > 0:
        time.sleep(0.01)
    if consumer is not None:
        consumer.wait_until(lambda c: len(c.seen) >= expect, 600)
    elapsed = time.perf_counter() - start
    dispatcher.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--records', type=int, default=100_000)
    parser.add_argument('--skip-mqtt', action='store_true')
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='bench-outbox-'))

    single = records(20_000, 'single')
    box = Outbox(work / 'single.sqlite', ['mqtt'])
    start = mark()
    for record in single:
        box.append(record)
    print(f'ingest, one transaction per record (synchronous=NORMAL): {rate(len(single), time.perf_counter() - start)}')
    box.close()

    box = Outbox(work / 'full.sqlite', ['mqtt'], OutboxConfig(synchronous='FULL'))
    start = mark()
    for record in single[:2000]:
        box.append(record)
    print(f'ingest, one transaction per record (synchronous=FULL):   {rate(2000, time.perf_counter() - start)}')
    box.close()

    outage = records(args.records, 'outage')
    box = Outbox(work / 'outage.sqlite', ['mqtt'], OutboxConfig(batch_size=1000))
    writer = OutboxWriter(box).start()
    start = mark()
    writer.submit(outage)
    writer.stop(600)
    print(f'ingest, writer thread (batched transactions):            {rate(len(outage), time.perf_counter() - start)}')
    print(f'drain {args.records:,} after outage, null transport:        '
          f'{rate(args.records, drain(box, NullTransport(), args.records))}')
    box.close()

    if args.skip_mqtt:
        return
    box = Outbox(work / 'outage_mqtt.sqlite', ['mqtt'], OutboxConfig(batch_size=1000))
    box.append_many(records(args.records, 'mqtt'))
    with LocalBroker(workdir=work / 'broker') as broker:
        consumer = DedupConsumer('127.0.0.1', broker.port, 'bench/bench/#').start()
        consumer.subscribed.wait(10)
        transport = MqttTransport(MqttSettings(port=broker.port, client_id='bench-producer', ack_timeout_s=60),
                                  MqttTopics('bench', 'bench')).start()
        while not transport.connected:
            time.sleep(0.01)
        elapsed = drain(box, transport, args.records, consumer)
        print(f'drain {args.records:,} after outage, {broker.kind} broker -> consumer: '
              f'{rate(consumer.count(), elapsed)}'
              f'; duplicates {consumer.duplicates}, order violations {consumer.order_violations}')
        transport.stop()
        consumer.stop()
    box.close()


if __name__ == '__main__':
    main()
