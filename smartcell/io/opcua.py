"""OPC UA server (asyncua) for the MES and SCADA: cell state, an OPC 40010-style robotics subtree,
axis positions, current job and counts, OEE, link state, alarms as events, ISA-95-style job control.

Runs in its own thread with its own asyncio loop. The node pushes values with `set_values` and
`emit_alarm` from any thread (coalesced, never blocking the caller). Method calls are answered by
the `JobCommandHandler` the owner injects, run in a worker thread so it may wait for a ROS service.

Security (docs/mes.md shows the configuration):
* endpoints: None, Basic256Sha256 SignAndEncrypt, or both (`security`);
* user-name logins only on the SignAndEncrypt endpoint: the None endpoint offers no user-name token
  and refuses one (BadIdentityTokenRejected), so a password never crosses the wire in the clear;
* users: a YAML file {name: {password_hash: <hash_password()>, role: operator|viewer}};
  operators may write and call methods, viewers only read, browse and subscribe;
* anonymous sessions: read-only (browse, read, subscribe; no write, no method call) or disabled;
* UserAccessLevel / UserExecutable are answered per session: a read-only user is never told a
  variable is writable or a method executable.

Methods take typed input arguments (String); a wrong count is BadArgumentsMissing /
BadTooManyArguments, a wrong type BadInvalidArgument with BadTypeMismatch on that argument.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

import yaml

# asyncua logs every refused request at WARNING/ERROR; the bridge reports refusals itself.
logging.getLogger('asyncua').setLevel(logging.CRITICAL)

from asyncua import Server, ua  # noqa: E402 - after quieting its logger
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole  # noqa: E402
from asyncua.common.callback import CallbackType  # noqa: E402
from asyncua.server.user_managers import UserManager  # noqa: E402
from asyncua.common.utils import ServiceError  # noqa: E402

ROLES = ('operator', 'viewer')
SECURITY_MODES = ('none', 'sign_encrypt', 'both')
ANONYMOUS_MODES = ('read_only', 'disabled')
JOB_METHODS = ('Store', 'StoreAndStart', 'Start', 'Pause', 'Resume', 'Abort', 'Cancel', 'GetJobResponse')
# the argument each method takes: a JobOrder as JSON for Store*, else the order id
METHOD_ARGUMENT = {name: ('JobOrder', 'the job order as JSON (docs/mes.md schema)')
                   if name.startswith('Store') else ('JobOrderID', 'the order id') for name in JOB_METHODS}
METHOD_ARGUMENT_TYPE = ua.VariantType.String     # every method takes exactly one String (scalar)
SEVERITY = {'info': 100, 'warning': 400, 'error': 700, 'critical': 900}   # OPC UA event severity 1..1000

# (command, argument) -> (ok, message); message is the reason on failure, JSON for GetJobResponse
JobCommandHandler = Callable[[str, str], tuple[bool, str]]


@dataclass(frozen=True)
class VarSpec:
    path: str                  # relative to the cell object; also the string node id
    kind: ua.VariantType
    initial: Any
    writable: bool = False     # by operators only
    description: str = ''


AXES = 6
_MD = 'Robotics/MotionDeviceSystem'
VARIABLES: tuple[VarSpec, ...] = (
    VarSpec('State', ua.VariantType.String, 'idle', description='cell state (lower case)'),
    VarSpec('Mode', ua.VariantType.String, '', description='cell operating mode'),
    VarSpec(f'{_MD}/SafetyStates/SafetyState_1/ParameterSet/OperationalMode', ua.VariantType.String, 'automatic',
            description='OPC 40010 OperationalMode'),
    VarSpec(f'{_MD}/SafetyStates/SafetyState_1/ParameterSet/EmergencyStop', ua.VariantType.Boolean, False),
    VarSpec(f'{_MD}/SafetyStates/SafetyState_1/ParameterSet/ProtectiveStop', ua.VariantType.Boolean, False),
    VarSpec(f'{_MD}/Controllers/Controller_1/TaskControls/TaskControl_1/ParameterSet/SpeedOverride',
            ua.VariantType.Double, 1.0, description='speed scale from safety, 0..1'),
) + tuple(VarSpec(f'{_MD}/MotionDevices/UR5e/Axes/Axis_{i}/ParameterSet/ActualPosition', ua.VariantType.Double,
                  0.0, description='rad') for i in range(1, AXES + 1)) + (
    VarSpec('Job/OrderId', ua.VariantType.String, ''),
    VarSpec('Job/WorkMaster', ua.VariantType.String, ''),
    VarSpec('Job/State', ua.VariantType.String, ''),
    VarSpec('Job/Quantity', ua.VariantType.Int64, 0, description='units'),
    VarSpec('Job/Produced', ua.VariantType.Int64, 0, description='units'),
    VarSpec('Job/Good', ua.VariantType.Int64, 0, description='units'),
    VarSpec('Job/Scrap', ua.VariantType.Int64, 0, description='units'),
    VarSpec('OEE/Availability', ua.VariantType.Double, 0.0, description='0..1'),
    VarSpec('OEE/Performance', ua.VariantType.Double, 0.0, description='may exceed 1: see PerformanceOver100'),
    VarSpec('OEE/Quality', ua.VariantType.Double, 0.0, description='0..1'),
    VarSpec('OEE/OEE', ua.VariantType.Double, 0.0),
    VarSpec('OEE/PerformanceOver100', ua.VariantType.Boolean, False),
    VarSpec('MES/ShiftId', ua.VariantType.String, '', writable=True, description='written by the MES'),
    VarSpec('Links/MqttConnected', ua.VariantType.Boolean, False),
    VarSpec('Links/OutboxBacklog', ua.VariantType.Int64, 0, description='undelivered records'),
)


def axis_path(axis: int) -> str:
    """Path of an axis position variable, axis 1..6."""
    return f'{_MD}/MotionDevices/UR5e/Axes/Axis_{axis}/ParameterSet/ActualPosition'


SPEED_OVERRIDE = VARIABLES[5].path
OPERATIONAL_MODE, EMERGENCY_STOP, PROTECTIVE_STOP = (v.path for v in VARIABLES[2:5])


# ---------------------------------------------------------------- users and certificates

def hash_password(password: str, iterations: int = 200_000, salt: bytes | None = None) -> str:
    """'pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>' for the users file."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations)
    return f'pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}'


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split('$')
    except ValueError:
        return False
    if scheme != 'pbkdf2_sha256':
        return False
    actual = hashlib.pbkdf2_hmac('sha256', password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(actual.hex(), digest)


@dataclass(frozen=True)
class OpcUaUser:
    name: str
    password_hash: str
    role: str          # operator | viewer


def load_users(path: str | Path) -> tuple[OpcUaUser, ...]:
    """Users from YAML {name: {password_hash, role}}; ValueError names the bad entry."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f'users file {path} must map user names to {{password_hash, role}}')
    users = []
    for name, entry in document.items():
        if not isinstance(entry, dict) or set(entry) != {'password_hash', 'role'}:
            raise ValueError(f'user {name!r} in {path} must have exactly password_hash and role')
        if entry['role'] not in ROLES:
            raise ValueError(f'user {name!r} in {path} has role {entry["role"]!r}; accepted: {", ".join(ROLES)}')
        users.append(OpcUaUser(str(name), str(entry['password_hash']), entry['role']))
    return tuple(users)


def generate_self_signed(cert_path: str | Path, key_path: str | Path, application_uri: str,
                         host: str = '127.0.0.1', common_name: str = 'smartcell', client: bool = False) -> None:
    """A self-signed application certificate (DER) and key (PEM) for Basic256Sha256 (tests, commissioning)."""
    import ipaddress

    from asyncua.crypto.cert_gen import (dump_private_key_as_pem, generate_private_key,
                                         generate_self_signed_app_certificate)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = generate_private_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri), x509.DNSName('localhost')]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH,
                                                             ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = generate_self_signed_app_certificate(key, common_name, {'organizationName': 'smartcell'}, names,
                                                extended=usage)
    Path(cert_path).parent.mkdir(parents=True, exist_ok=True)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.DER))
    Path(key_path).write_bytes(dump_private_key_as_pem(key))
    os.chmod(key_path, 0o600)


class _Users(UserManager):
    def __init__(self, users: Sequence[OpcUaUser], anonymous: str) -> None:
        self._users = {u.name: u for u in users}
        self._anonymous = anonymous

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is None:
            return User(role=UserRole.Anonymous, name='anonymous') if self._anonymous == 'read_only' else None
        if not certificate:
            # `certificate` is the secure channel's peer certificate: empty on the unencrypted endpoint.
            # The password has crossed in the clear already; refusing it keeps anyone from relying on it.
            raise ServiceError(ua.StatusCodes.BadIdentityTokenRejected)
        user = self._users.get(username)
        if user is None or not check_password(password or '', user.password_hash):
            return None
        # viewers get the anonymous (read-only) role under their own name
        return User(role=UserRole.User if user.role == 'operator' else UserRole.Anonymous, name=username)


def _node_id(identifier: int | str, namespace: int = 0) -> ua.NodeId:
    """`ua.NodeId(identifier, namespace)`. asyncua annotates the fields with its wrapper classes
    (ua.Int32, ua.String, ua.Int16) but takes, and itself passes, plain int and str."""
    return ua.NodeId(identifier, namespace)  # type: ignore[arg-type]  # asyncua's annotation, see above


def _status(code: int) -> ua.StatusCode:
    """`ua.StatusCode(code)`: asyncua annotates ua.UInt32 but its own StatusCodes are plain int."""
    return ua.StatusCode(code)  # type: ignore[arg-type]  # asyncua's annotation, see above


_ALL_REQUESTS = {_node_id(t) for t in USER_TYPES}
_READ_ONLY = _ALL_REQUESTS - {_node_id(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary),
                              _node_id(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)}


def _can_write(user: Any) -> bool:
    return getattr(user, 'role', None) in (UserRole.Admin, UserRole.User)


class _Server(Server):
    """asyncua's server, advertising user-name tokens on SignAndEncrypt endpoints only."""

    def _set_endpoints(self, policy, mode, level) -> None:
        tokens = self.iserver.supported_tokens
        if mode != ua.MessageSecurityMode.SignAndEncrypt:
            # asyncua infers its default 3-tuple as the attribute's type; it assigns any tuple itself
            self.iserver.supported_tokens = tuple(  # type: ignore[assignment]
                t for t in tokens if t is not ua.UserNameIdentityToken)
        try:
            super()._set_endpoints(policy, mode, level)
        finally:
            self.iserver.supported_tokens = tokens


class _Ruleset(PermissionRuleset):
    """Operators: read, write, call, subscribe. Read-only roles: everything but write and call."""

    def __init__(self) -> None:
        self._allowed = {UserRole.Admin: set(_ALL_REQUESTS),
                         UserRole.User: set(_ALL_REQUESTS),
                         UserRole.Anonymous: _READ_ONLY}

    def check_validity(self, user, action_type_id, body):
        return action_type_id in self._allowed.get(user.role, set())


# ---------------------------------------------------------------- server

@dataclass(frozen=True)
class OpcUaSettings:
    endpoint: str = 'opc.tcp://127.0.0.1:4840/smartcell/'
    cell_id: str = 'cell-1'
    security: str = 'none'                 # none | sign_encrypt | both
    cert_file: str = ''                    # DER or PEM; needed for sign_encrypt
    key_file: str = ''                     # PEM
    users: tuple[OpcUaUser, ...] = ()
    anonymous: str = 'read_only'           # read_only | disabled
    namespace_uri: str = 'urn:smartcell:mes'
    application_uri: str = 'urn:smartcell:mes_bridge'
    extra_variables: int = 0               # Bench/Var_NNNN doubles (benchmark only)
    trusted_client_certs_dir: str = ''     # encrypted endpoints: only client certificates in here (DER/PEM)

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f'security {self.security!r}; accepted: {", ".join(SECURITY_MODES)}')
        if self.anonymous not in ANONYMOUS_MODES:
            raise ValueError(f'anonymous {self.anonymous!r}; accepted: {", ".join(ANONYMOUS_MODES)}')
        if self.security != 'none' and not (self.cert_file and self.key_file):
            raise ValueError(f'security {self.security!r} needs cert_file and key_file')
        if self.users and self.security == 'none':
            raise ValueError('user logins are accepted only on the encrypted endpoint: set security to '
                             "'sign_encrypt' or 'both' (passwords would otherwise travel in the clear)")
        host = urlparse(self.endpoint).hostname
        if host not in ('127.0.0.1', 'localhost', '::1') and os.environ.get('SMARTCELL_OPCUA_ANY_HOST') != '1':
            raise ValueError(f'endpoint host {host!r}: this server binds to 127.0.0.1 only unless '
                             'SMARTCELL_OPCUA_ANY_HOST=1 (put a firewall and sign_encrypt in front of it)')


class OpcUaServer:
    """The server, in its own thread and asyncio loop. Thread-safe `set_values` / `emit_alarm`."""

    def __init__(self, settings: OpcUaSettings, on_job_command: JobCommandHandler) -> None:
        self.settings = settings
        self._handler = on_job_command
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._pending: dict[str, Any] = {}
        self._flush_scheduled = False
        self._nodes: dict[str, tuple[Any, ua.VariantType]] = {}
        self._writable_ids: set[ua.NodeId] = set()
        self._method_ids: set[ua.NodeId] = set()
        self.writes_applied = 0

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def start(self, timeout_s: float = 120.0) -> 'OpcUaServer':
        # asyncua builds the standard address space in Python: 30.5 s measured for one server at load
        # average 25 on the shared 2-core machine; the limit only has to catch a hang
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name='opcua-server', daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f'OPC UA server did not start within {timeout_s} s at {self.settings.endpoint}')
        if self._error is not None:
            raise RuntimeError(f'OPC UA server failed to start at {self.settings.endpoint}: {self._error}') \
                from self._error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        loop, self._loop = self._loop, None      # later set_values/emit_alarm calls become no-ops
        if loop is not None and self._stop_event is not None:
            loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Queue new values by path (see VARIABLES); unknown paths raise KeyError naming them."""
        unknown = [p for p in values if p not in self._nodes]
        if unknown:
            raise KeyError(f'unknown OPC UA variable path(s) {unknown}')
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._queue, dict(values))

    def emit_alarm(self, code: str, severity: str, text: str) -> None:
        """Fire an alarm event on the cell object (severity info/warning/error/critical)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._fire(code, severity, text)))

    # ------------------------------------------------------------ inside the loop

    def _queue(self, values: dict[str, Any]) -> None:
        self._pending.update(values)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for path, value in pending.items():
            node, kind = self._nodes[path]
            await self._server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(value, kind)))
            self.writes_applied += 1

    async def _fire(self, code: str, severity: str, text: str) -> None:
        self._event.event.Code = code
        self._event.event.Message = ua.LocalizedText(text)
        self._event.event.Severity = SEVERITY.get(severity, SEVERITY['critical'])
        await self._event.trigger()

    async def _main(self) -> None:
        try:
            await self._setup()
            await self._server.start()
        except BaseException as exc:  # reported to start() in the caller's thread
            self._error = exc
            self._ready.set()
            return
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self._server.stop()

    async def _setup(self) -> None:
        s = self.settings
        server = _Server(user_manager=_Users(s.users, s.anonymous))
        self._server = server
        await server.init()
        server.set_endpoint(s.endpoint)
        server.set_server_name(f'smartcell MES bridge ({s.cell_id})')
        await server.set_application_uri(s.application_uri)
        policies = {'none': [ua.SecurityPolicyType.NoSecurity],
                    'sign_encrypt': [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
                    'both': [ua.SecurityPolicyType.NoSecurity,
                             ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]}[s.security]
        # asyncua annotates SimpleRoleRuleset; it calls only PermissionRuleset.check_validity
        server.set_security_policy(policies, permission_ruleset=_Ruleset())  # type: ignore[arg-type]
        if s.cert_file:
            await server.load_certificate(s.cert_file)
            await server.load_private_key(s.key_file)
        if s.trusted_client_certs_dir:
            from asyncua.crypto.truststore import TrustStore
            from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
            store = TrustStore([Path(s.trusted_client_certs_dir)], [])
            await store.load()
            server.set_certificate_validator(CertificateValidator(
                CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT, store))
        tokens: list[type] = [ua.UserNameIdentityToken]
        if s.anonymous == 'read_only':
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        server.subscribe_server_callback(CallbackType.PostRead, self._answer_user_access)
        idx = await server.register_namespace(s.namespace_uri)
        cell = await server.nodes.objects.add_object(_node_id(s.cell_id, idx), f'{idx}:Cell_{s.cell_id}')
        objects: dict[str, Any] = {'': cell}

        async def parent_of(path: str):
            folder = path.rpartition('/')[0]
            if folder not in objects:
                above = await parent_of(folder)
                objects[folder] = await above.add_object(_node_id(f'{s.cell_id}/{folder}', idx),
                                                         f'{idx}:{folder.rpartition("/")[2]}')
            return objects[folder]

        specs = VARIABLES + tuple(VarSpec(f'Bench/Var_{i:04d}', ua.VariantType.Double, 0.0)
                                  for i in range(s.extra_variables))
        for spec in specs:
            parent = await parent_of(spec.path)
            node = await parent.add_variable(_node_id(f'{s.cell_id}/{spec.path}', idx),
                                             f'{idx}:{spec.path.rpartition("/")[2]}',
                                             ua.Variant(spec.initial, spec.kind))
            if spec.writable:
                await node.set_writable(True)
            if spec.description:
                await node.write_attribute(ua.AttributeIds.Description,
                                           ua.DataValue(ua.Variant(ua.LocalizedText(spec.description))))
            self._nodes[spec.path] = (node, spec.kind)
            if spec.writable:
                self._writable_ids.add(node.nodeid)

        control = await cell.add_object(_node_id(f'{s.cell_id}/JobControl', idx), f'{idx}:JobControl')
        for name in JOB_METHODS:
            arg_name, arg_doc = METHOD_ARGUMENT[name]
            self._method_ids.add(_node_id(f'{s.cell_id}/JobControl/{name}', idx))
            await control.add_method(_node_id(f'{s.cell_id}/JobControl/{name}', idx), f'{idx}:{name}',
                                     self._method(name), [_argument(arg_name, METHOD_ARGUMENT_TYPE, arg_doc)],
                                     [_argument('ReturnStatus', ua.VariantType.Int32, '0 = done, 1 = refused'),
                                      _argument('Message', ua.VariantType.String, 'reason or JSON result')])

        alarm_type = await server.create_custom_event_type(idx, 'SmartcellAlarmEventType', ua.ObjectIds.BaseEventType,
                                                           [('Code', ua.VariantType.String)])
        # asyncua annotates NodeId | int; its EventGenerator.init takes a Node as it is
        self._event = await server.get_event_generator(alarm_type, cell)  # type: ignore[arg-type]

    def _answer_user_access(self, event: Any, dispatcher: Any) -> None:
        """PostRead: UserAccessLevel and UserExecutable as they are for this session's user."""
        if _can_write(event.user):
            return
        for i, item in enumerate(event.request_params.NodesToRead):
            if item.AttributeId == ua.AttributeIds.UserAccessLevel and item.NodeId in self._writable_ids:
                level = ua.AccessLevel.CurrentRead.mask
                event.response_params[i] = ua.DataValue(ua.Variant(level, ua.VariantType.Byte))
            elif item.AttributeId == ua.AttributeIds.UserExecutable and item.NodeId in self._method_ids:
                event.response_params[i] = ua.DataValue(ua.Variant(False, ua.VariantType.Boolean))

    def _method(self, name: str):
        async def call(parent, *arguments: Any) -> list[ua.Variant] | ua.CallMethodResult:
            refused = check_arguments(arguments)
            if refused is not None:
                return refused
            text = arguments[0].Value if isinstance(arguments[0], ua.Variant) else arguments[0]
            try:
                ok, message = await asyncio.get_running_loop().run_in_executor(None, self._handler, name,
                                                                               str(text or ''))
            except Exception as exc:  # a handler bug must answer the client, not kill the call silently
                ok, message = False, f'internal error in {name}: {type(exc).__name__}: {exc}'
            return [ua.Variant(0 if ok else 1, ua.VariantType.Int32), ua.Variant(message, ua.VariantType.String)]
        return call


def check_arguments(arguments: Sequence[Any]) -> ua.CallMethodResult | None:
    """The OPC UA answer to a call with the wrong input arguments (Part 4, Call service), or None."""
    result = ua.CallMethodResult()
    if len(arguments) != 1:
        result.StatusCode = _status(ua.StatusCodes.BadArgumentsMissing if not arguments
                                    else ua.StatusCodes.BadTooManyArguments)
        result.InputArgumentResults = [ua.StatusCode() for _ in arguments[:1]] + [
            _status(ua.StatusCodes.BadTooManyArguments) for _ in arguments[1:]]
        return result
    argument = arguments[0]
    if not isinstance(argument, ua.Variant) or argument.VariantType != METHOD_ARGUMENT_TYPE or \
            argument.is_array:
        result.StatusCode = _status(ua.StatusCodes.BadInvalidArgument)
        result.InputArgumentResults = [_status(ua.StatusCodes.BadTypeMismatch)]
        return result
    return None


def _argument(name: str, kind: ua.VariantType, doc: str) -> ua.Argument:
    argument = ua.Argument()
    argument.Name = name
    argument.DataType = _node_id(kind.value)
    argument.ValueRank = -1
    argument.Description = ua.LocalizedText(doc)
    return argument


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m smartcell.io.opcua hash-password`: print a password_hash for the users file."""
    import argparse
    import getpass
    import sys
    parser = argparse.ArgumentParser(prog='python -m smartcell.io.opcua')
    parser.add_argument('command', choices=['hash-password'])
    parser.parse_args(argv)
    password = getpass.getpass('password: ') if sys.stdin.isatty() else sys.stdin.readline().rstrip('\n')
    if not password:
        print('empty password refused', file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
