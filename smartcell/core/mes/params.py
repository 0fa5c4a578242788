"""Parameters of the `mes_bridge` node (importable without rclpy; registered in smartcell/topology.py)."""
from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from smartcell.core.params import ConfigError, NodeParams, ParamSpec
from smartcell.core.safety.authority import CellKeyError, default_cell_key_path

OPCUA_SECURITY = ('none', 'sign_encrypt', 'both')      # both: None and Basic256Sha256 SignAndEncrypt endpoints
OPCUA_ANONYMOUS = ('read_only', 'disabled')
# What a bridge in a ROS namespace derives from it, so that two cells on one machine never share them.
NAMESPACE_DERIVED = ('cell_id', 'db_path', 'opcua_endpoint', 'mqtt_client_id')
OPCUA_PORT_OFFSETS = 1000       # a namespaced bridge serves on the configured port + 1..1000

MES_BRIDGE = NodeParams('mes_bridge', (
    ParamSpec('cell_id', 'cell-1', 'cell id in every record and MQTT topic (cell-wide under /**)'),
    ParamSpec('db_path', '', 'outbox SQLite file; empty: $ROS_HOME/smartcell/mes_outbox_<cell_id>.sqlite '
                             '(ROS_HOME defaults to ~/.ros)'),
    ParamSpec('topic_prefix', 'smartcell', 'MQTT topic prefix: <prefix>/<cell_id>/...'),
    ParamSpec('work_masters', ['bracket_a', 'bracket_b', 'housing_c'],
              'known products; orders for others are rejected'),
    ParamSpec('ideal_cycle_s', [30.0, 45.0, 60.0], 'ideal cycle time per work master (same order), s'),
    ParamSpec('orders_file', '', "job orders to load at start (YAML/JSON list); 'example' = the embedded example; "
                                 "empty = none"),
    ParamSpec('mqtt_enabled', True, 'publish records to an MQTT broker and take orders from it'),
    ParamSpec('mqtt_host', '127.0.0.1', 'MQTT broker host'),
    ParamSpec('mqtt_port', 1883, 'MQTT broker port', min=1, max=65535),
    ParamSpec('mqtt_client_id', '', 'MQTT client id of the persistent session; empty: '
                                    'smartcell-<topic_prefix>-<cell_id>-bridge (unique per cell: never share it)'),
    ParamSpec('mqtt_keepalive_s', 30, 'MQTT keep-alive, s (the broker sends the last will after 1.5x)', min=5, max=600),
    ParamSpec('mqtt_tls', False, 'connect with TLS'),
    ParamSpec('mqtt_ca_file', '', 'CA certificate (PEM) for TLS; empty = system CAs'),
    ParamSpec('mqtt_cert_file', '', 'client certificate (PEM) for mutual TLS; empty = none'),
    ParamSpec('mqtt_key_file', '', 'client private key (PEM) for mutual TLS'),
    ParamSpec('mqtt_username', '', 'MQTT user name; empty = anonymous'),
    ParamSpec('mqtt_password_env', 'SMARTCELL_MQTT_PASSWORD',
              'name of the environment variable holding the MQTT password (never put passwords in YAML)'),
    ParamSpec('opcua_enabled', True, 'run the OPC UA server'),
    ParamSpec('opcua_endpoint', 'opc.tcp://127.0.0.1:4840/smartcell/', 'OPC UA endpoint URL (bind address and port)'),
    ParamSpec('opcua_security', 'none', 'endpoint security: none, sign_encrypt (Basic256Sha256), or both',
              choices=OPCUA_SECURITY),
    ParamSpec('opcua_cert_file', '', 'server certificate (DER or PEM); empty with sign_encrypt = self-signed, '
                                     'generated next to the outbox'),
    ParamSpec('opcua_key_file', '', 'server private key (PEM)'),
    ParamSpec('opcua_trusted_certs_dir', '', 'encrypted endpoints accept only client certificates in this folder '
                                             '(DER/PEM); empty = any client certificate'),
    ParamSpec('opcua_users_file', '', 'YAML users file {name: {password_hash, role: operator|viewer}}, hashes from '
                                      'smartcell.io.opcua.hash_password; empty = no user logins'),
    ParamSpec('opcua_anonymous', 'read_only', 'anonymous sessions: read_only or disabled', choices=OPCUA_ANONYMOUS),
    ParamSpec('outbox_capacity_records', 1_000_000, 'undelivered records before telemetry is dropped',
              min=100, max=100_000_000),
    ParamSpec('outbox_synchronous', 'NORMAL', 'SQLite synchronous: NORMAL survives crashes, FULL power loss',
              choices=('NORMAL', 'FULL')),
    ParamSpec('backoff_initial_s', 0.5, 'first retry delay after a failed delivery, s', min=0.01, max=60.0),
    ParamSpec('backoff_max_s', 30.0, 'longest retry delay, s', min=0.1, max=3600.0),
    ParamSpec('telemetry_period_s', 1.0, 'axis positions period, s (node clock)', min=0.05, max=3600.0),
    ParamSpec('shift_length_s', 28800.0, 'shift length for shift OEE, s; shifts start at 00:00 UTC + k x length '
                                         '(node clock)', min=1.0, max=86400.0),
    ParamSpec('diagnostics_period_s', 1.0, '/diagnostics period, s (node clock)', min=0.1, max=60.0),
    ParamSpec('service_timeout_s', 2.0, 'wait for a supervisor service answer, s', min=0.1, max=60.0),
    ParamSpec('cell_key_file', '', 'the cell key the supervisor signs cell/events with (set cell-wide under /**, '
              'the same file as the supervisor; 32 bytes, mode 0600, created when missing); an event that does '
              'not verify is never sealed. Empty: <ROS_HOME or ~/.ros>/smartcell/<cell_id>.key, cell_id as set '
              '(not namespace-derived), as the supervisor and the arm take it'),
    ParamSpec('events_publisher', 'supervisor', 'the only node (in this namespace) that may publish cell/events '
              'and cell/events/replay; another publisher is named in an ERROR on /diagnostics'),
    ParamSpec('namespace_derived', list(NAMESPACE_DERIVED),
              'in a ROS namespace, these take the namespace: cell_id becomes it (/line2/cell_b -> line2-cell_b), '
              'an explicit db_path and mqtt_client_id get it appended, opcua_endpoint moves to port + 1..1000 '
              "(a hash of it); leave a name out to use its value as given; [''] = none"),
))


@dataclass(frozen=True)
class MesBridgeConfig:
    """Start-up configuration of the bridge, built once from the validated parameters."""

    cell_id: str
    db_path: Path
    topic_prefix: str
    ideal_cycle_s: Mapping[str, float]        # work master -> s
    orders_file: str
    mqtt_enabled: bool
    mqtt_host: str
    mqtt_port: int
    mqtt_client_id: str
    mqtt_keepalive_s: int
    mqtt_tls: bool
    mqtt_ca_file: str
    mqtt_cert_file: str
    mqtt_key_file: str
    mqtt_username: str
    mqtt_password: str
    opcua_enabled: bool
    opcua_endpoint: str
    opcua_security: str
    opcua_cert_file: str
    opcua_key_file: str
    opcua_trusted_certs_dir: str
    opcua_users_file: str
    opcua_anonymous: str
    outbox_capacity_records: int
    outbox_synchronous: str
    backoff_initial_s: float
    backoff_max_s: float
    telemetry_period_s: float
    shift_length_s: float
    diagnostics_period_s: float
    service_timeout_s: float
    cell_key_file: Path = Path()               # resolved: the configured file or the cell's default key path
    events_publisher: str = 'supervisor'

    @property
    def work_masters(self) -> tuple[str, ...]:
        return tuple(self.ideal_cycle_s)


def namespace_slug(namespace: str) -> str:
    """'/line2/cell_b' -> 'line2-cell_b'; '' for the root namespace."""
    return '-'.join(part for part in namespace.strip().split('/') if part)


_ENDPOINT = re.compile(r'^(opc\.tcp://(?:\[[^\]]+\]|[^:/]+))(?::(\d+))?(/.*)?$')


def endpoint_port(endpoint: str) -> int:
    """The TCP port of an opc.tcp:// URL (4840 when it names none)."""
    match = _ENDPOINT.match(endpoint)
    if match is None:
        raise ConfigError(f'mes_bridge.opcua_endpoint {endpoint!r} is not an opc.tcp://host[:port][/path] URL')
    return int(match.group(2) or 4840)


def with_port(endpoint: str, port: int) -> str:
    """The same endpoint URL on another port."""
    match = _ENDPOINT.match(endpoint)
    if match is None:
        raise ConfigError(f'mes_bridge.opcua_endpoint {endpoint!r} is not an opc.tcp://host[:port][/path] URL')
    return f'{match.group(1)}:{port}{match.group(3) or "/"}'


def endpoint_host(endpoint: str) -> str:
    match = _ENDPOINT.match(endpoint)
    if match is None:
        raise ConfigError(f'mes_bridge.opcua_endpoint {endpoint!r} is not an opc.tcp://host[:port][/path] URL')
    return match.group(1)[len('opc.tcp://'):].strip('[]')


def port_taken_message(endpoint: str, reason: str) -> str:
    """The start-up error for an OPC UA port another program holds: the port, the parameter, the way out."""
    return (f'OPC UA port {endpoint_port(endpoint)} on {endpoint_host(endpoint)} is not available ({reason}): '
            f'another program (a second cell, another OPC UA server) holds it. Set mes_bridge.opcua_endpoint to a '
            f'free port (now {endpoint!r}), run the cell in its own namespace, or turn the server off with '
            f'mes_bridge.opcua_enabled:=false')


def namespaced(values: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The parameters with the namespace folded into those listed in `namespace_derived`.

    Two cells started side by side under /cell_a and /cell_b get distinct cell ids, outbox files,
    OPC UA ports and MQTT client ids from one shared parameter file (an empty db_path and
    mqtt_client_id follow the cell id). The port offset is a hash of the namespace (1..1000): two
    namespaces may collide (about 1 pair in 1000), which the bridge reports at start-up naming the
    port and the parameter; set opcua_endpoint for one of them then.
    """
    derived = dict(values)
    names = [str(n) for n in values.get('namespace_derived', NAMESPACE_DERIVED) if str(n)]   # [''] = none
    unknown = sorted(set(names) - set(NAMESPACE_DERIVED))
    if unknown:
        raise ConfigError(f'mes_bridge.namespace_derived has unknown name(s) {unknown}; accepted: '
                          f'{", ".join(NAMESPACE_DERIVED)}')
    slug = namespace_slug(namespace)
    if not slug:
        return derived
    if 'cell_id' in names:
        derived['cell_id'] = slug
    if 'db_path' in names and values['db_path']:
        path = Path(str(values['db_path']))
        derived['db_path'] = str(path.with_name(f'{path.stem}_{slug}{path.suffix}'))
    if 'mqtt_client_id' in names and values['mqtt_client_id']:
        derived['mqtt_client_id'] = f'{values["mqtt_client_id"]}-{slug}'
    if 'opcua_endpoint' in names:
        endpoint = str(values['opcua_endpoint'])
        port = endpoint_port(endpoint) + 1 + zlib.crc32(slug.encode()) % OPCUA_PORT_OFFSETS
        if port > 65535:
            raise ConfigError(f'mes_bridge.opcua_endpoint {endpoint!r}: the port for namespace {namespace!r} '
                              f'would be {port} (> 65535); set opcua_endpoint for this cell')
        derived['opcua_endpoint'] = with_port(endpoint, port)
    return derived


def bridge_config(values: Mapping[str, Any], environ: Mapping[str, str] = os.environ,
                  namespace: str = '/') -> MesBridgeConfig:
    """Cross-check the parameters, fold in the namespace, resolve defaults; ConfigError names the bad one."""
    if not str(values['opcua_endpoint']).startswith('opc.tcp://'):
        raise ConfigError(f'mes_bridge.opcua_endpoint must start with opc.tcp://, got {values["opcua_endpoint"]!r}')
    # the key is the cell's, named by cell_id as set (the supervisor and the arm do not derive it)
    try:
        key_file = str(values.get('cell_key_file', '')) or str(default_cell_key_path(
            str(values['cell_id']), dict(environ)))
    except CellKeyError as exc:
        raise ConfigError(f'mes_bridge.cell_key_file: {exc}') from exc
    values = namespaced(values, namespace)
    masters, cycles = list(values['work_masters']), list(values['ideal_cycle_s'])
    if len(masters) != len(cycles):
        raise ConfigError(f'mes_bridge.work_masters ({len(masters)}) and ideal_cycle_s ({len(cycles)}) '
                          'must have the same length')
    if not masters or any(c <= 0 for c in cycles):
        raise ConfigError('mes_bridge.work_masters must not be empty and every ideal_cycle_s must be > 0 s')
    if not str(values['opcua_endpoint']).startswith('opc.tcp://'):
        raise ConfigError(f'mes_bridge.opcua_endpoint must start with opc.tcp://, got {values["opcua_endpoint"]!r}')
    if values['backoff_initial_s'] > values['backoff_max_s']:
        raise ConfigError('mes_bridge.backoff_initial_s must be <= backoff_max_s')
    db_path = str(values['db_path'])
    if not db_path:
        ros_home = Path(environ.get('ROS_HOME') or Path.home() / '.ros')
        db_path = str(ros_home / 'smartcell' / f'mes_outbox_{values["cell_id"]}.sqlite')
    password = environ.get(str(values['mqtt_password_env']), '') if values['mqtt_password_env'] else ''
    plain = {k: values[k] for k in (
        'cell_id', 'topic_prefix', 'orders_file', 'mqtt_enabled', 'mqtt_host', 'mqtt_port', 'mqtt_client_id',
        'mqtt_keepalive_s',
        'mqtt_tls', 'mqtt_ca_file', 'mqtt_cert_file', 'mqtt_key_file', 'mqtt_username', 'opcua_enabled',
        'opcua_endpoint', 'opcua_security', 'opcua_cert_file', 'opcua_key_file', 'opcua_trusted_certs_dir',
        'opcua_users_file',
        'opcua_anonymous', 'outbox_capacity_records', 'outbox_synchronous', 'backoff_initial_s', 'backoff_max_s',
        'telemetry_period_s', 'shift_length_s', 'diagnostics_period_s', 'service_timeout_s')}
    return MesBridgeConfig(db_path=Path(db_path), ideal_cycle_s=dict(zip(masters, cycles)),
                           mqtt_password=password, cell_key_file=Path(key_file),
                           events_publisher=str(values.get('events_publisher', 'supervisor')), **plain)
