"""OPC UA server against a real asyncua client: browse, subscribe, events, methods, users, anonymous, encryption."""
import asyncio
import json

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from smartcell.core.mes.records import OrderRejected, validate_order
from smartcell.io.broker import free_port
from smartcell.io.opcua import (EMERGENCY_STOP, SPEED_OVERRIDE, OpcUaServer, OpcUaSettings, OpcUaUser, axis_path,
                                check_password, generate_self_signed, hash_password, load_users)

NS = 'urn:smartcell:mes'
OPERATOR = OpcUaUser('mes', hash_password('s3cret', iterations=1000), 'operator')
VIEWER = OpcUaUser('scada', hash_password('view', iterations=1000), 'viewer')


class FakeCell:
    """Stands in for the bridge: validates Store* orders, remembers calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, command, argument):
        self.calls.append((command, argument))
        if command.startswith('Store'):
            try:
                order = validate_order(argument, ['bracket_a'])
            except OrderRejected as exc:
                return False, exc.reason
            return True, f'stored {order.order_id}'
        if command == 'GetJobResponse':
            return True, json.dumps({'order_id': argument, 'state': 'waiting'})
        return True, f'{command} {argument}'


@pytest.fixture(scope='module')
def certs(tmp_path_factory):
    """Server and client certificates (RSA key generation is slow: once per module)."""
    folder = tmp_path_factory.mktemp('certs')
    generate_self_signed(folder / 'server.der', folder / 'server.pem', 'urn:smartcell:mes_bridge')
    generate_self_signed(folder / 'client.der', folder / 'client.pem', 'urn:smartcell:test-client', client=True)
    return folder


def start_server(certs=None, **kwargs):
    """Users need an encrypted endpoint: with `certs`, None + SignAndEncrypt endpoints and two users."""
    if certs is not None:
        kwargs = {'security': 'both', 'cert_file': str(certs / 'server.der'), 'key_file': str(certs / 'server.pem'),
                  'users': (OPERATOR, VIEWER), **kwargs}
    settings = OpcUaSettings(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/smartcell/', **kwargs)
    cell = FakeCell()
    return OpcUaServer(settings, cell).start(), cell


async def encrypted_client(server, certs, user=None, password=None, timeout=10):
    client = Client(server.endpoint, timeout=timeout)
    client.application_uri = 'urn:smartcell:test-client'
    await client.set_security(SecurityPolicyBasic256Sha256, str(certs / 'client.der'), str(certs / 'client.pem'),
                              mode=ua.MessageSecurityMode.SignAndEncrypt)
    if user:
        client.set_user(user)
        client.set_password(password)
    return client


def node_id(idx, path):
    return ua.NodeId(f'cell-1/{path}', idx)


async def wait_for(condition, timeout_s=10.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class Collector:
    def __init__(self):
        self.values, self.events = [], []

    def datachange_notification(self, node, value, data):
        self.values.append(value)

    def event_notification(self, event):
        self.events.append(event)


def test_password_hashing():
    stored = hash_password('pw', iterations=1000)
    assert check_password('pw', stored) and not check_password('pW', stored)
    assert not check_password('pw', 'plain-text')


def test_users_file(tmp_path):
    path = tmp_path / 'users.yaml'
    path.write_text(f'mes: {{password_hash: "{OPERATOR.password_hash}", role: operator}}\n')
    assert load_users(path) == (OPERATOR,)
    path.write_text('mes: {password_hash: x, role: admin}\n')
    with pytest.raises(ValueError, match="role 'admin'"):
        load_users(path)


def test_browse_subscribe_events_and_anonymous_read_only(certs):
    server, cell = start_server(certs)

    async def scenario():
        async with Client(server.endpoint) as client:                   # anonymous
            idx = await client.get_namespace_index(NS)
            cell_obj = await client.nodes.objects.get_child([f'{idx}:Cell_cell-1'])
            names = {(await c.read_browse_name()).Name for c in await cell_obj.get_children()}
            assert {'State', 'Robotics', 'Job', 'OEE', 'JobControl', 'MES', 'Links'} <= names
            axis = await cell_obj.get_child([f'{idx}:Robotics', f'{idx}:MotionDeviceSystem', f'{idx}:MotionDevices',
                                             f'{idx}:UR5e', f'{idx}:Axes', f'{idx}:Axis_3', f'{idx}:ParameterSet',
                                             f'{idx}:ActualPosition'])
            assert axis.nodeid == node_id(idx, axis_path(3))
            collector = Collector()
            subscription = await client.create_subscription(50, collector)
            await subscription.subscribe_data_change(client.get_node(node_id(idx, 'State')))
            alarm_type = await client.nodes.base_event_type.get_child([f'{idx}:SmartcellAlarmEventType'])
            await subscription.subscribe_events(cell_obj, alarm_type)
            assert await wait_for(lambda: collector.values == ['idle'])
            server.set_values({'State': 'running', axis_path(3): 1.25, SPEED_OVERRIDE: 0.4, EMERGENCY_STOP: True})
            assert await wait_for(lambda: collector.values[-1:] == ['running'])
            assert await axis.read_value() == 1.25
            assert await client.get_node(node_id(idx, SPEED_OVERRIDE)).read_value() == 0.4
            assert await client.get_node(node_id(idx, EMERGENCY_STOP)).read_value() is True
            server.emit_alarm('OUTBOX_FULL', 'warning', 'outbox 85 % full')
            assert await wait_for(lambda: len(collector.events) == 1)
            event = collector.events[0]
            assert event.Message.Text == 'outbox 85 % full' and event.Severity == 400 and event.Code == 'OUTBOX_FULL'
            # anonymous: read-only
            shift = client.get_node(node_id(idx, 'MES/ShiftId'))
            with pytest.raises(ua.UaStatusCodeError) as denied:
                await shift.write_value(ua.Variant('S1', ua.VariantType.String))
            assert denied.value.code == ua.StatusCodes.BadUserAccessDenied
            control = client.get_node(ua.NodeId('cell-1/JobControl', idx))
            with pytest.raises(ua.UaStatusCodeError) as refused:
                await control.call_method(ua.NodeId('cell-1/JobControl/Start', idx), 'PO-1')
            assert refused.value.code == ua.StatusCodes.BadUserAccessDenied
        assert cell.calls == []

        # operator: writes and job control; an invalid order comes back with the reason, nothing stored
        async with await encrypted_client(server, certs, 'mes', 's3cret') as client:
            idx = await client.get_namespace_index(NS)
            await client.get_node(node_id(idx, 'MES/ShiftId')).write_value(ua.Variant('S1', ua.VariantType.String))
            assert await client.get_node(node_id(idx, 'MES/ShiftId')).read_value() == 'S1'
            control = client.get_node(ua.NodeId('cell-1/JobControl', idx))
            status, message = await control.call_method(ua.NodeId('cell-1/JobControl/Store', idx),
                                                        json.dumps({'order_id': 'PO-1', 'work_master': 'nope',
                                                                    'quantity': 3}))
            assert status == 1 and 'unknown work master' in message
            good = json.dumps({'order_id': 'PO-2', 'work_master': 'bracket_a', 'quantity': 3})
            assert await control.call_method(ua.NodeId('cell-1/JobControl/StoreAndStart', idx), good) == \
                [0, 'stored PO-2']
            status, message = await control.call_method(ua.NodeId('cell-1/JobControl/GetJobResponse', idx), 'PO-2')
            assert status == 0 and json.loads(message)['state'] == 'waiting'
        assert [c[0] for c in cell.calls] == ['Store', 'StoreAndStart', 'GetJobResponse']

        # wrong password and viewer role
        with pytest.raises(ua.UaStatusCodeError):
            async with await encrypted_client(server, certs, 'mes', 'wrong'):
                pass
        async with await encrypted_client(server, certs, 'scada', 'view') as viewer:
            idx = await viewer.get_namespace_index(NS)
            assert await viewer.get_node(node_id(idx, 'State')).read_value() == 'running'
            with pytest.raises(ua.UaStatusCodeError):
                await viewer.get_node(node_id(idx, 'MES/ShiftId')).write_value(ua.Variant('S2', ua.VariantType.String))

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_anonymous_disabled(certs):
    server, _ = start_server(certs, anonymous='disabled')

    async def scenario():
        with pytest.raises(ua.UaStatusCodeError):
            async with Client(server.endpoint):
                pass
        async with await encrypted_client(server, certs, 'mes', 's3cret') as client:
            idx = await client.get_namespace_index(NS)
            assert await client.get_node(node_id(idx, 'State')).read_value() == 'idle'
    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_basic256sha256_sign_and_encrypt(tmp_path):
    generate_self_signed(tmp_path / 'server.der', tmp_path / 'server.pem', 'urn:smartcell:mes_bridge')
    generate_self_signed(tmp_path / 'client.der', tmp_path / 'client.pem', 'urn:smartcell:test-client', client=True)
    server, _ = start_server(security='sign_encrypt', cert_file=str(tmp_path / 'server.der'),
                             key_file=str(tmp_path / 'server.pem'), users=(OPERATOR, VIEWER))

    async def scenario():
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises several types; no unencrypted endpoint
            async with Client(server.endpoint, timeout=5):
                pass
        client = Client(server.endpoint, timeout=10)
        client.application_uri = 'urn:smartcell:test-client'
        await client.set_security(SecurityPolicyBasic256Sha256, str(tmp_path / 'client.der'),
                                  str(tmp_path / 'client.pem'), mode=ua.MessageSecurityMode.SignAndEncrypt)
        client.set_user('mes')
        client.set_password('s3cret')
        async with client:
            idx = await client.get_namespace_index(NS)
            await client.get_node(node_id(idx, 'MES/ShiftId')).write_value(ua.Variant('S9', ua.VariantType.String))
            assert await client.get_node(node_id(idx, 'MES/ShiftId')).read_value() == 'S9'
            endpoints = await client.get_endpoints()
            assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_only_trusted_client_certificates(tmp_path):
    trusted = tmp_path / 'trusted'
    trusted.mkdir()
    generate_self_signed(tmp_path / 'server.der', tmp_path / 'server.pem', 'urn:smartcell:mes_bridge')
    generate_self_signed(trusted / 'client.der', tmp_path / 'client.pem', 'urn:smartcell:test-client', client=True)
    generate_self_signed(tmp_path / 'stranger.der', tmp_path / 'stranger.pem', 'urn:smartcell:test-client',
                         client=True)
    server, _ = start_server(security='sign_encrypt', cert_file=str(tmp_path / 'server.der'),
                             key_file=str(tmp_path / 'server.pem'), trusted_client_certs_dir=str(trusted))

    async def connect(cert, key):
        client = Client(server.endpoint, timeout=10)
        client.application_uri = 'urn:smartcell:test-client'
        await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                  mode=ua.MessageSecurityMode.SignAndEncrypt)
        async with client:
            idx = await client.get_namespace_index(NS)
            return await client.get_node(node_id(idx, 'State')).read_value()

    async def scenario():
        assert await connect(trusted / 'client.der', tmp_path / 'client.pem') == 'idle'
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises several types for a refused certificate
            await connect(tmp_path / 'stranger.der', tmp_path / 'stranger.pem')
    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_user_logins_need_the_encrypted_endpoint(certs):
    with pytest.raises(ValueError, match="user logins are accepted only on the encrypted endpoint"):
        OpcUaSettings(endpoint=f'opc.tcp://127.0.0.1:{free_port()}/smartcell/', users=(OPERATOR,))
    server, cell = start_server(certs)

    async def scenario():
        async with Client(server.endpoint) as client:
            endpoints = await client.get_endpoints()
        tokens = {e.SecurityMode: {t.TokenType for t in e.UserIdentityTokens} for e in endpoints}
        assert tokens[ua.MessageSecurityMode.None_] == {ua.UserTokenType.Anonymous}
        assert tokens[ua.MessageSecurityMode.SignAndEncrypt] == {ua.UserTokenType.Anonymous,
                                                                 ua.UserTokenType.UserName}
        # a client that sends a password on the None endpoint anyway is refused, even with the right one
        plain = Client(server.endpoint, timeout=5)
        plain.set_user('mes')
        plain.set_password('s3cret')
        with pytest.raises(ua.UaStatusCodeError) as refused:
            async with plain:
                pass
        assert refused.value.code == ua.StatusCodes.BadIdentityTokenRejected
    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    assert cell.calls == []


def test_method_arguments_are_checked_with_the_standard_codes(certs):
    server, cell = start_server(certs)

    async def scenario():
        async with await encrypted_client(server, certs, 'mes', 's3cret') as client:
            idx = await client.get_namespace_index(NS)
            control = client.get_node(ua.NodeId('cell-1/JobControl', idx))
            start = ua.NodeId('cell-1/JobControl/Start', idx)
            arguments = await client.get_node(start).get_child('0:InputArguments')
            declared = await arguments.read_value()
            assert [(a.Name, a.DataType, a.ValueRank) for a in declared] == [
                ('JobOrderID', ua.NodeId(ua.ObjectIds.String), -1)]
            cases = [((), ua.StatusCodes.BadArgumentsMissing, []),
                     (('PO-1', 'PO-2'), ua.StatusCodes.BadTooManyArguments,
                      [ua.StatusCodes.Good, ua.StatusCodes.BadTooManyArguments]),
                     ((ua.Variant(7, ua.VariantType.Int32),), ua.StatusCodes.BadInvalidArgument,
                      [ua.StatusCodes.BadTypeMismatch]),
                     ((ua.Variant(['PO-1'], ua.VariantType.String),), ua.StatusCodes.BadInvalidArgument,
                      [ua.StatusCodes.BadTypeMismatch])]
            for args, code, per_argument in cases:
                request = ua.CallMethodRequest()
                request.ObjectId, request.MethodId = control.nodeid, start
                request.InputArguments = [a if isinstance(a, ua.Variant) else ua.Variant(a, ua.VariantType.String)
                                          for a in args]
                result, = await client.uaclient.call([request])
                assert result.StatusCode.value == code, (args, result.StatusCode)
                assert [r.value for r in result.InputArgumentResults] == per_argument
            assert await control.call_method(start, 'PO-1') == [0, 'Start PO-1']
    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    assert cell.calls == [('Start', 'PO-1')]


def test_user_access_level_tells_each_user_the_truth(certs):
    server, _ = start_server(certs)

    async def levels(client):
        idx = await client.get_namespace_index(NS)
        shift = client.get_node(node_id(idx, 'MES/ShiftId'))
        state = client.get_node(node_id(idx, 'State'))
        start = client.get_node(ua.NodeId('cell-1/JobControl/Start', idx))
        user_level = ua.AccessLevel.CurrentWrite in await shift.get_user_access_level()
        return (user_level, ua.AccessLevel.CurrentWrite in await state.get_user_access_level(),
                await start.read_attribute(ua.AttributeIds.UserExecutable))

    async def scenario():
        async with Client(server.endpoint) as anonymous:
            anonymous_levels = await levels(anonymous)
        async with await encrypted_client(server, certs, 'scada', 'view') as viewer:
            viewer_levels = await levels(viewer)
        async with await encrypted_client(server, certs, 'mes', 's3cret') as operator:
            operator_levels = await levels(operator)
        return anonymous_levels, viewer_levels, operator_levels

    try:
        anonymous_levels, viewer_levels, operator_levels = asyncio.run(scenario())
    finally:
        server.stop()
    executable = lambda value: value.Value.Value   # noqa: E731 - DataValue -> bool
    assert anonymous_levels[:2] == (False, False) and executable(anonymous_levels[2]) is False
    assert viewer_levels[:2] == (False, False) and executable(viewer_levels[2]) is False
    assert operator_levels[:2] == (True, False) and executable(operator_levels[2]) is True
