"""Production records for the MES (ISA-95 / B2MML-inspired), job-order validation, event -> record mapping.

Pure Python (stdlib only): the MES bridge node, the outbox and the transports all speak these records.

Every record travels in one envelope, `Record`: a unique id, the cell id, a stream name and a
per-stream sequence number (assigned by the outbox when the record is stored), plus the typed body.
Records made from a cell event get a *deterministic* id derived from the event id, so re-sending the
same event (a restart, a replay) produces the same record id and consumers can deduplicate.

B2MML names (for MES integrators) -> our JSON keys:
  JobOrder.ID -> order_id, WorkMasterID -> work_master, Quantity -> quantity, Priority -> priority,
  JobOrderParameter -> parameters, StartTime/EndTime -> requested_start_s/requested_end_s (UNIX s),
  JobResponse.JobState -> state, ActualStartTime/ActualEndTime -> actual_start_s/actual_end_s.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Collection, Mapping

# Namespace for deterministic record ids (uuid5 of cell/stream/event id); fixed forever.
RECORD_NAMESPACE = uuid.UUID('5b0c3f52-6c1e-4d8e-9a57-2f4a8d1e7c10')


class RecordClass(str, Enum):
    """Priority class of a stream: decides the outbox overflow policy and the audit chain."""

    PRODUCTION = 'production'   # never dropped, hash-chained
    SAFETY = 'safety'           # never dropped, hash-chained
    TELEMETRY = 'telemetry'     # oldest dropped first when the outbox is full


class Stream(str, Enum):
    """Record streams; each has its own sequence number and MQTT topic `<prefix>/<cell_id>/<stream>`."""

    JOB_ORDER = 'job_order'
    JOB_RESPONSE = 'job_response'
    UNIT = 'unit'
    EQUIPMENT_STATE = 'equipment_state'
    ALARM = 'alarm'
    SAFETY = 'safety'
    SAFETY_SUMMARY = 'safety_summary'
    ANCHOR = 'anchor'                 # the safety evidence log's head, a copy off the cell's machine
    OEE = 'oee'
    TELEMETRY = 'telemetry'


STREAM_CLASS: dict[Stream, RecordClass] = {
    Stream.JOB_ORDER: RecordClass.PRODUCTION,
    Stream.JOB_RESPONSE: RecordClass.PRODUCTION,
    Stream.UNIT: RecordClass.PRODUCTION,
    Stream.EQUIPMENT_STATE: RecordClass.PRODUCTION,
    Stream.ALARM: RecordClass.SAFETY,
    Stream.SAFETY: RecordClass.SAFETY,
    Stream.SAFETY_SUMMARY: RecordClass.SAFETY,
    Stream.ANCHOR: RecordClass.SAFETY,
    Stream.OEE: RecordClass.TELEMETRY,
    Stream.TELEMETRY: RecordClass.TELEMETRY,
}


def stream_class(stream: str) -> RecordClass:
    """Priority class of a stream name; an unknown stream is an error naming the accepted ones."""
    try:
        return STREAM_CLASS[Stream(stream)]
    except ValueError:
        raise ValueError(f'unknown stream {stream!r}; accepted: {", ".join(s.value for s in Stream)}') from None


def is_chained(stream: str) -> bool:
    """Production and safety records are hash-chained in the audit trail; telemetry is not."""
    return stream_class(stream) is not RecordClass.TELEMETRY


class JobState(str, Enum):
    """ISA-95 job states (Part 4 JobOrder/JobResponse), lower case on the wire."""

    WAITING = 'waiting'       # accepted, queued
    RUNNING = 'running'
    HELD = 'held'             # paused
    COMPLETED = 'completed'
    ABORTED = 'aborted'
    CANCELLED = 'cancelled'   # removed before it started
    REJECTED = 'rejected'


# ---------------------------------------------------------------- record bodies

@dataclass(frozen=True)
class JobOrder:
    """A validated ISA-95 job order (build it with `validate_order`)."""

    order_id: str
    work_master: str                               # product / recipe, one of the known work masters
    quantity: int                                  # units to produce
    priority: int = 5                              # 1 = most urgent .. 10
    parameters: Mapping[str, Any] = field(default_factory=dict)   # recipe parameters, JSON scalars
    requested_start_s: float | None = None         # UNIX time, s
    requested_end_s: float | None = None           # UNIX time, s


@dataclass(frozen=True)
class JobResponse:
    """What happened to a job order (ISA-95 JobResponse)."""

    order_id: str
    state: str                                     # a JobState value
    work_master: str = ''
    quantity: int = 0                              # units ordered
    actual_start_s: float | None = None            # cell (ROS) time, s
    actual_end_s: float | None = None              # cell (ROS) time, s
    produced: int = 0                              # units
    good: int = 0                                  # units
    scrap: int = 0                                 # units
    run_time_s: float = 0.0                        # time between start and end, s
    mean_cycle_time_s: float | None = None         # mean over produced units, s
    energy_j: float | None = None                  # metered energy of this job's cycles, J; None = not metered
    co2e_g: float | None = None                    # grams CO2-equivalent; None = not metered
    reason: str = ''


@dataclass(frozen=True)
class UnitRecord:
    """One unit produced (from `unit_complete`)."""

    order_id: str
    unit: int
    cycle_time_s: float | None                     # s, from the cell; None when the cell did not time it
    good: bool
    energy_j: float | None = None
    co2e_g: float | None = None


@dataclass(frozen=True)
class EquipmentState:
    """The cell's state (ISA-95 equipment state) after a change."""

    state: str                                     # idle, running, paused, protective_stop, ...
    previous: str = ''
    reason: str = ''
    mode: str = ''


@dataclass(frozen=True)
class Alarm:
    code: str
    severity: str                                  # info, warning, error, critical
    text: str
    active: bool = True


@dataclass(frozen=True)
class SafetyEvent:
    """A safety stop, clear or slowdown as the supervisor reported it."""

    kind: str                                      # safety_stop, safety_clear, slowdown
    reason: str = ''
    duration_s: float | None = None                # slowdowns only


@dataclass(frozen=True)
class SafetyEventsSummary:
    """Safety activity over a window (a job or a shift)."""

    window_start_s: float
    window_end_s: float
    order_id: str = ''
    safety_stops: int = 0
    emergency_stops: int = 0
    slowdowns: int = 0
    stop_time_s: float = 0.0                       # time in protective/emergency stop, s
    slowdown_time_s: float = 0.0                   # time at reduced speed, s


@dataclass(frozen=True)
class EvidenceAnchor:
    """The head of the supervisor's safety evidence log when it sent it (`evidence_anchor` event): an
    auditor checks the log against it (`smartcell safety-report LOG --anchor-seq N --anchor-hash H`)."""

    evidence_seq: int                              # seq of the newest record = records in the chain
    evidence_hash: str                             # its hash (64 hex digits)


Body = JobOrder | JobResponse | UnitRecord | EquipmentState | Alarm | SafetyEvent | SafetyEventsSummary \
    | EvidenceAnchor

BODY_STREAM: dict[type, Stream] = {
    JobOrder: Stream.JOB_ORDER,
    JobResponse: Stream.JOB_RESPONSE,
    UnitRecord: Stream.UNIT,
    EquipmentState: Stream.EQUIPMENT_STATE,
    Alarm: Stream.ALARM,
    SafetyEvent: Stream.SAFETY,
    SafetyEventsSummary: Stream.SAFETY_SUMMARY,
    EvidenceAnchor: Stream.ANCHOR,
}
BODY_TYPES: dict[str, type] = {t.__name__: t for t in BODY_STREAM}


def body_to_dict(body: Any) -> dict[str, Any]:
    data = dataclasses.asdict(body)
    if isinstance(body, JobOrder):
        data['parameters'] = dict(body.parameters)
    return data


def body_from_dict(kind: str, data: Mapping[str, Any]) -> Body:
    """Rebuild a typed body; unknown kind or keys are errors naming them."""
    cls = BODY_TYPES.get(kind)
    if cls is None:
        raise ValueError(f'unknown record kind {kind!r}; accepted: {", ".join(BODY_TYPES)}')
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f'unknown field(s) {sorted(unknown)} for {kind}; accepted: {", ".join(sorted(names))}')
    return cls(**data)


# ---------------------------------------------------------------- envelope

@dataclass(frozen=True)
class Record:
    """The envelope every record travels in (outbox row, MQTT payload, OPC UA value, audit line)."""

    record_id: str                                 # uuid; deterministic when made from a cell event
    cell_id: str
    stream: str                                    # a Stream value
    kind: str                                      # body type name, e.g. 'JobResponse'
    stamp_s: float                                 # cell (ROS) time of the source event, s
    body: Mapping[str, Any]
    seq: int = 0                                   # per-stream sequence, 1, 2, ...; 0 = not stored yet
    prev_hash: str = ''                            # audit chain (production/safety only), hex SHA-256
    hash: str = ''

    def to_dict(self) -> dict[str, Any]:
        return {'record_id': self.record_id, 'cell_id': self.cell_id, 'stream': self.stream,
                'seq': self.seq, 'kind': self.kind, 'stamp_s': self.stamp_s, 'body': dict(self.body),
                'prev_hash': self.prev_hash, 'hash': self.hash}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'Record':
        missing = {'record_id', 'cell_id', 'stream', 'kind', 'stamp_s', 'body'} - set(data)
        if missing:
            raise ValueError(f'record is missing field(s) {sorted(missing)}')
        return cls(record_id=str(data['record_id']), cell_id=str(data['cell_id']), stream=str(data['stream']),
                   kind=str(data['kind']), stamp_s=float(data['stamp_s']), body=dict(data['body']),
                   seq=int(data.get('seq', 0)), prev_hash=str(data.get('prev_hash', '')),
                   hash=str(data.get('hash', '')))

    @classmethod
    def from_json(cls, text: str | bytes) -> 'Record':
        return cls.from_dict(json.loads(text))

    def typed_body(self) -> Body:
        return body_from_dict(self.kind, self.body)


def record_id_for(cell_id: str, stream: str, source_id: str) -> str:
    """Deterministic id: the same source (cell event id) always yields the same record id."""
    return str(uuid.uuid5(RECORD_NAMESPACE, f'{cell_id}/{stream}/{source_id}'))


def make_record(body: Body, cell_id: str, stamp_s: float, source_id: str | None = None) -> Record:
    """Wrap a body; `source_id` (the cell event id) makes the id deterministic, else uuid4."""
    stream = BODY_STREAM[type(body)].value
    record_id = record_id_for(cell_id, stream, source_id) if source_id else str(uuid.uuid4())
    return Record(record_id=record_id, cell_id=cell_id, stream=stream, kind=type(body).__name__,
                  stamp_s=float(stamp_s), body=body_to_dict(body))


def telemetry_record(cell_id: str, stamp_s: float, name: str, values: Mapping[str, Any],
                     stream: Stream = Stream.TELEMETRY) -> Record:
    """A telemetry sample (axis positions, OEE snapshot, energy): droppable, not chained."""
    if stream_class(stream.value) is not RecordClass.TELEMETRY:
        raise ValueError(f'stream {stream.value!r} is not a telemetry stream')
    return Record(record_id=str(uuid.uuid4()), cell_id=cell_id, stream=stream.value, kind=name,
                  stamp_s=float(stamp_s), body=dict(values))


# ---------------------------------------------------------------- job-order validation

class OrderRejected(ValueError):
    """A job order is invalid; `reason` names the field, the bad value and what is accepted."""

    def __init__(self, reason: str, order_id: str = '', field_name: str = '') -> None:
        super().__init__(reason)
        self.reason = reason
        self.order_id = order_id
        self.field_name = field_name


ORDER_ID_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$')
MAX_QUANTITY = 100_000          # units; more than a month of the cell's output is a typo
MAX_PARAMETERS = 32
MAX_PARAMETER_TEXT = 256        # characters


@dataclass(frozen=True)
class FieldRule:
    """One field of the job-order schema."""

    kinds: tuple[type, ...]
    required: bool
    min: float | None = None
    max: float | None = None
    nullable: bool = False

    def describe(self) -> str:
        names = '/'.join('number' if k is float else k.__name__ for k in self.kinds)
        rng = ''
        if self.min is not None or self.max is not None:
            rng = f' in [{self.min if self.min is not None else "-inf"}, {self.max if self.max is not None else "inf"}]'
        return f'{"" if self.required else "optional "}{names}{rng}{" or null" if self.nullable else ""}'


ORDER_SCHEMA: dict[str, FieldRule] = {
    'order_id': FieldRule((str,), required=True),
    'work_master': FieldRule((str,), required=True),
    'quantity': FieldRule((int,), required=True, min=1, max=MAX_QUANTITY),
    'priority': FieldRule((int,), required=False, min=1, max=10),
    'parameters': FieldRule((dict,), required=False),
    'requested_start_s': FieldRule((int, float), required=False, min=0, nullable=True),
    'requested_end_s': FieldRule((int, float), required=False, min=0, nullable=True),
}


def _check_field(name: str, rule: FieldRule, value: Any, order_id: str) -> None:
    def reject(why: str) -> OrderRejected:
        return OrderRejected(f'field {name!r} {why}; accepted: {rule.describe()}', order_id, name)

    if value is None:
        if rule.nullable:
            return
        raise reject('is null')
    # bool is an int in Python but never a quantity or priority in a job order
    if isinstance(value, bool) or not isinstance(value, rule.kinds):
        raise reject(f'has type {type(value).__name__} ({value!r:.40})')
    if isinstance(value, float) and not math.isfinite(value):
        raise reject(f'is not finite ({value!r})')
    number = float(value) if isinstance(value, (int, float)) else None
    below = number is not None and rule.min is not None and number < rule.min
    above = number is not None and rule.max is not None and number > rule.max
    if below or above:
        raise reject(f'is out of range ({value!r})')


def _check_parameters(parameters: Mapping[str, Any], order_id: str) -> None:
    if len(parameters) > MAX_PARAMETERS:
        raise OrderRejected(f'field \'parameters\' has {len(parameters)} entries; accepted: at most {MAX_PARAMETERS}',
                            order_id, 'parameters')
    for key, value in parameters.items():
        if not isinstance(key, str) or not key or len(key) > 64:
            raise OrderRejected(f'parameter name {key!r} is invalid; accepted: a non-empty string of <= 64 characters',
                                order_id, 'parameters')
        ok = (isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value))
              or (isinstance(value, str) and len(value) <= MAX_PARAMETER_TEXT))
        if not ok:
            raise OrderRejected(f'parameter {key!r} has value {value!r:.40}; accepted: a finite number, bool, '
                                f'or string of <= {MAX_PARAMETER_TEXT} characters', order_id, 'parameters')


def validate_order(raw: Any, known_work_masters: Collection[str]) -> JobOrder:
    """Check a job order (a mapping or JSON text) against the schema; return it or raise OrderRejected.

    Nothing is coerced: a quantity of "5" or 5.0 or true is rejected, so the MES sees its own bug.
    """
    if isinstance(raw, (str, bytes, bytearray)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OrderRejected(f'order is not valid JSON: {exc}') from None
    if not isinstance(raw, Mapping):
        raise OrderRejected(f'order must be a JSON object, got {type(raw).__name__}')
    found_id = raw.get('order_id')
    order_id: str = found_id if isinstance(found_id, str) else ''
    unknown = sorted(str(k) for k in raw if k not in ORDER_SCHEMA)
    if unknown:
        raise OrderRejected(f'unknown field(s) {unknown}; accepted: {", ".join(ORDER_SCHEMA)}', order_id, unknown[0])
    for name, rule in ORDER_SCHEMA.items():
        if name not in raw:
            if rule.required:
                raise OrderRejected(f'missing field {name!r}; accepted: {rule.describe()}', order_id, name)
            continue
        _check_field(name, rule, raw[name], order_id)
    if not ORDER_ID_PATTERN.match(raw['order_id']):
        raise OrderRejected(f'field \'order_id\' {raw["order_id"]!r:.70} is invalid; accepted: 1-64 characters '
                            'of letters, digits and ._:- starting with a letter or digit', order_id, 'order_id')
    if raw['work_master'] not in known_work_masters:
        raise OrderRejected(f'unknown work master {raw["work_master"]!r:.70}; accepted: '
                            f'{", ".join(sorted(known_work_masters)) or "(none configured)"}', order_id, 'work_master')
    parameters = raw.get('parameters') or {}
    _check_parameters(parameters, order_id)
    start, end = raw.get('requested_start_s'), raw.get('requested_end_s')
    if start is not None and end is not None and end <= start:
        raise OrderRejected(f'requested_end_s ({end}) must be after requested_start_s ({start})',
                            order_id, 'requested_end_s')
    return JobOrder(order_id=raw['order_id'], work_master=raw['work_master'], quantity=raw['quantity'],
                    priority=raw.get('priority', 5), parameters=dict(parameters),
                    requested_start_s=None if start is None else float(start),
                    requested_end_s=None if end is None else float(end))


def order_to_json(order: JobOrder) -> str:
    """The wire form of a validated order (published on `mes/job_order`)."""
    return json.dumps(body_to_dict(order), sort_keys=True)


# ---------------------------------------------------------------- cell events -> records

ALARM_SEVERITIES = ('info', 'warning', 'error', 'critical')


@dataclass
class JobTracker:
    """Follows jobs through `cell/events` and yields JobResponse bodies on every job transition.

    Mutable on purpose: it is the bridge's memory of open jobs; the functions it calls are pure.
    """

    orders: dict[str, JobOrder] = field(default_factory=dict)
    responses: dict[str, JobResponse] = field(default_factory=dict)
    cycle_times_s: dict[str, list[float]] = field(default_factory=dict)
    current_order_id: str = ''

    def remember(self, order: JobOrder) -> None:
        self.orders[order.order_id] = order

    def _base(self, order_id: str) -> JobResponse:
        found = self.responses.get(order_id)
        if found is not None:
            return found
        order = self.orders.get(order_id)
        return JobResponse(order_id=order_id, state=JobState.WAITING.value,
                           work_master=order.work_master if order else '', quantity=order.quantity if order else 0)

    def _set(self, response: JobResponse) -> JobResponse:
        self.responses[response.order_id] = response
        return response

    def on_event(self, event: Mapping[str, Any], energy: Mapping[str, float] | None = None) -> list[Body]:
        """Bodies produced by one cell event (JobResponse and UnitRecord); `energy` = last metered cycle."""
        kind, stamp = event.get('type'), float(event.get('stamp', 0.0))
        order_id = str(event.get('order_id') or self.current_order_id)
        if kind == 'job_accepted':
            base = self._base(order_id)
            # the cell's acceptance names the order: a bridge that did not take it in (restarted) still knows it
            return [self._set(dataclasses.replace(
                base, state=JobState.WAITING.value, work_master=str(event.get('work_master') or base.work_master),
                quantity=_int_or(event.get('quantity'), base.quantity)))]
        if kind in ('job_cancelled', 'job_aborted'):
            base = self._base(order_id)
            state = JobState.CANCELLED if kind == 'job_cancelled' else JobState.ABORTED
            start = base.actual_start_s
            response = dataclasses.replace(
                base, state=state.value, actual_end_s=stamp if start is not None else None,
                produced=_int_or(event.get('produced'), base.produced),
                run_time_s=max(0.0, stamp - start) if start is not None else 0.0,
                reason=str(event.get('reason', '')))
            if self.current_order_id == order_id:
                self.current_order_id = ''
            return [self._set(response)]
        if kind == 'job_rejected':
            return [self._set(dataclasses.replace(self._base(order_id), state=JobState.REJECTED.value,
                                                  reason=str(event.get('reason', ''))))]
        if kind == 'job_started':
            self.current_order_id = order_id
            return [self._set(dataclasses.replace(self._base(order_id), state=JobState.RUNNING.value,
                                                  actual_start_s=stamp))]
        if kind == 'unit_complete':
            good = bool(event.get('good', False))
            cycle = _finite_or_none(event.get('cycle_time_s'))
            if cycle is not None:
                self.cycle_times_s.setdefault(order_id, []).append(cycle)
            base = self._base(order_id)
            energy_j = (energy or {}).get('energy_j')
            co2e_g = (energy or {}).get('co2e_g')
            self._set(dataclasses.replace(
                base, produced=base.produced + 1, good=base.good + int(good), scrap=base.scrap + int(not good),
                energy_j=_add_optional(base.energy_j, energy_j), co2e_g=_add_optional(base.co2e_g, co2e_g)))
            return [UnitRecord(order_id=order_id, unit=int(event.get('unit', 0)), cycle_time_s=cycle, good=good,
                               energy_j=energy_j, co2e_g=co2e_g)]
        if kind == 'job_complete':
            base = self._base(order_id)
            cycles = self.cycle_times_s.get(order_id, [])
            start = base.actual_start_s if base.actual_start_s is not None else stamp
            # the supervisor's own counts are authoritative at the end of a job
            response = dataclasses.replace(
                base, state=JobState.COMPLETED.value, actual_start_s=start, actual_end_s=stamp,
                produced=int(event.get('produced', base.produced)), good=int(event.get('good', base.good)),
                scrap=int(event.get('scrap', base.scrap)), run_time_s=max(0.0, stamp - start),
                mean_cycle_time_s=sum(cycles) / len(cycles) if cycles else None)
            if self.current_order_id == order_id:
                self.current_order_id = ''
            return [self._set(response)]
        return []


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _int_or(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def _add_optional(total: float | None, value: float | None) -> float | None:
    if value is None:
        return total
    return (total or 0.0) + float(value)


def bodies_from_event(event: Mapping[str, Any]) -> list[Body]:
    """Bodies made from a cell event without job memory (state, safety, alarms)."""
    kind = event.get('type')
    if kind == 'state_change':
        return [EquipmentState(state=str(event.get('to', '')), previous=str(event.get('from', '')),
                               reason=str(event.get('reason', '')))]
    if kind == 'mode_change':
        return [EquipmentState(state='', mode=str(event.get('mode', '')), reason='mode change')]
    if kind in ('safety_stop', 'safety_clear'):
        return [SafetyEvent(kind=kind, reason=str(event.get('reason', '')))]
    if kind == 'slowdown':
        return [SafetyEvent(kind=kind, reason=str(event.get('reason', '')),
                            duration_s=float(event.get('duration_s', 0.0)))]
    if kind == 'fault':
        return [Alarm(code='FAULT', severity='error', text=str(event.get('reason', '')))]
    if kind == 'alarm':
        severity = str(event.get('severity', 'warning')).lower()
        # an unknown severity is treated as the most serious: the operator must look at it
        return [Alarm(code=str(event.get('code', '')), severity=severity if severity in ALARM_SEVERITIES
                      else 'critical', text=str(event.get('text', '')))]
    if kind == 'evidence_anchor':
        seq = event.get('evidence_seq')
        return [EvidenceAnchor(evidence_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else -1,
                               evidence_hash=str(event.get('evidence_hash', '')))]
    return []


def records_from_event(event: Mapping[str, Any], cell_id: str, tracker: JobTracker,
                       energy: Mapping[str, float] | None = None) -> list[Record]:
    """All records for one cell event, with ids derived from its event_id (idempotent re-sends)."""
    event_id = str(event.get('event_id') or '')
    stamp = float(event.get('stamp', 0.0))
    bodies = bodies_from_event(event) + tracker.on_event(event, energy)
    # one event may give several bodies of different streams; the stream is part of the id
    return [make_record(body, cell_id, stamp, source_id=event_id or None) for body in bodies]


# ---------------------------------------------------------------- job intake from a file

EXAMPLE_ORDERS_YAML = """\
# Example job orders (the same schema as MQTT and OPC UA intake; see docs/mes.md).
# The same orders as the shipped config/job_orders.yaml, for the shipped cell's products.
- order_id: PO-2026-0001
  work_master: demo
  quantity: 20
  priority: 3
  parameters: {torque_nm: 4.5, inspect: true}
- order_id: PO-2026-0002
  work_master: gearbox
  quantity: 5
"""


def parse_orders(text: str, known_work_masters: Collection[str]) -> list[JobOrder | OrderRejected]:
    """Orders from YAML or JSON text (a list, or {'orders': [...]}): each valid order or its rejection."""
    import yaml   # JSON is YAML; imported here so the records module itself stays stdlib-only
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [OrderRejected(f'orders file is not valid YAML/JSON: {exc}')]
    if isinstance(document, Mapping) and set(document) == {'orders'}:
        document = document['orders']
    if not isinstance(document, list):
        return [OrderRejected('orders file must hold a list of orders (or {orders: [...]})')]
    results: list[JobOrder | OrderRejected] = []
    for index, raw in enumerate(document):
        try:
            results.append(validate_order(raw, known_work_masters))
        except OrderRejected as exc:
            results.append(OrderRejected(f'order #{index}: {exc.reason}', exc.order_id, exc.field_name))
    seen: set[str] = set()
    for index, item in enumerate(results):
        if isinstance(item, JobOrder):
            if item.order_id in seen:
                results[index] = OrderRejected(f'order #{index}: duplicate order_id {item.order_id!r}',
                                               item.order_id, 'order_id')
            seen.add(item.order_id)
    return results


# ---------------------------------------------------------------- job control and outbox alarm

# ISA-95 job-control command -> supervisor Trigger service (namespace-relative).
JOB_COMMAND_SERVICE: dict[str, str] = {
    'Start': 'cell/start',
    'Pause': 'cell/pause',
    'Resume': 'cell/resume',
    'Abort': 'cell/stop',
}
JOB_COMMANDS = ('Store', 'StoreAndStart', 'Start', 'Pause', 'Resume', 'Abort', 'Cancel', 'GetJobResponse')


def service_for(command: str) -> str:
    """The supervisor service for a job command; an unknown command is an error naming the accepted ones."""
    try:
        return JOB_COMMAND_SERVICE[command]
    except KeyError:
        raise ValueError(f'job command {command!r} has no supervisor service; accepted: '
                         f'{", ".join(JOB_COMMAND_SERVICE)}') from None


@dataclass(frozen=True)
class FillAlarm:
    """Outbox fill hysteresis: raise above `raise_fraction`, clear below `clear_fraction`."""

    raise_fraction: float = 0.8
    clear_fraction: float = 0.7

    def next_state(self, active: bool, fill_fraction: float) -> bool:
        # the gap between the two thresholds stops the alarm from chattering at 80 %
        if active:
            return fill_fraction >= self.clear_fraction
        return fill_fraction > self.raise_fraction
