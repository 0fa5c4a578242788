"""A real local MQTT broker for tests, benchmarks and simulation, and a cuttable TCP link.

`LocalBroker` runs mosquitto when it is on PATH, else amqtt (a PyPI dependency of the project),
as a subprocess bound to 127.0.0.1 on a free port, so a test can kill it (`kill()` = SIGKILL) and
start it again on the same port. `TcpLink` is a localhost TCP forwarder that can be cut and
restored: it lets a test take one client's network away while the broker keeps running.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping

LOCALHOST = '127.0.0.1'


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def port_taken(host: str, port: int) -> str:
    """Why a server could not listen on host:port ('' when it can): a bind test, released at once."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # the same option asyncua's and mosquitto's listeners set: a port in TIME_WAIT is free to them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return ''


def wait_for_port(port: int, timeout_s: float, host: str = LOCALHOST) -> bool:
    """Poll until something accepts TCP connections on the port (True) or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)   # polling a port that is not open yet; not a fixed wait for a result
    return False


class LocalBroker:
    """An MQTT 3.1.1 broker subprocess on 127.0.0.1:<port> (mosquitto if available, else amqtt)."""

    def __init__(self, port: int | None = None, prefer: str = 'auto', workdir: str | Path | None = None,
                 tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
                 users: Mapping[str, str] | None = None) -> None:
        """`tls_cert`/`tls_key` (PEM): TLS listener. `users` {name: password}: logins required (amqtt only)."""
        self.port = port or free_port()
        mosquitto = shutil.which('mosquitto')
        if prefer == 'mosquitto' and not mosquitto:
            raise RuntimeError('mosquitto was asked for but is not on PATH')
        if users and prefer == 'mosquitto':
            raise RuntimeError('users are only supported with amqtt here (mosquitto needs mosquitto_passwd)')
        self.kind = 'mosquitto' if mosquitto and prefer in ('auto', 'mosquitto') and not users else 'amqtt'
        self._tls = (str(tls_cert), str(tls_key)) if tls_cert and tls_key else None
        self._users = dict(users or {})
        self._workdir = Path(workdir or tempfile.mkdtemp(prefix='smartcell-broker-'))
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen | None = None
        self.log_path = self._workdir / 'broker.log'

    def _command(self) -> list[str]:
        if self.kind == 'mosquitto':
            config = self._workdir / 'mosquitto.conf'
            tls = f'certfile {self._tls[0]}\nkeyfile {self._tls[1]}\n' if self._tls else ''
            # Persistence on, as on a production broker: a stopped and restarted broker keeps the persistent
            # sessions and their queued QoS 1 messages (saved on a clean stop, and every second).
            config.write_text(f'listener {self.port} {LOCALHOST}\n{tls}allow_anonymous true\npersistence true\n'
                              f'persistence_location {self._workdir}/\nautosave_interval 1\n')
            mosquitto = shutil.which('mosquitto')
            if mosquitto is None:
                raise RuntimeError('mosquitto is no longer on PATH')
            return [mosquitto, '-c', str(config)]
        config = self._workdir / 'amqtt.yaml'
        tls = f'    ssl: true\n    certfile: {self._tls[0]}\n    keyfile: {self._tls[1]}\n' if self._tls else ''
        if self._users:
            from pwdlib.hashers.argon2 import Argon2Hasher   # amqtt's own dependency
            passwords = self._workdir / 'passwords'
            hasher = Argon2Hasher()
            passwords.write_text(''.join(f'{name}:{hasher.hash(pw)}\n' for name, pw in self._users.items()))
            auth = f'  amqtt.plugins.authentication.FileAuthPlugin:\n    password_file: {passwords}\n'
        else:
            auth = '  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n'
        config.write_text(
            'listeners:\n  default:\n    type: tcp\n'
            f'    bind: {LOCALHOST}:{self.port}\n'
            f'    max_connections: 100\n{tls}'
            f'plugins:\n{auth}')
        return [sys.executable, '-c', 'from amqtt.scripts.broker_script import main; main()', '-c', str(config)]

    def start(self, timeout_s: float = 20.0) -> 'LocalBroker':
        if self.running:
            return self
        log = self.log_path.open('ab')
        self._process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
        log.close()
        if not wait_for_port(self.port, timeout_s):
            self.kill()
            raise RuntimeError(f'{self.kind} broker did not open {LOCALHOST}:{self.port} within {timeout_s} s; '
                               f'log: {self.log_path}')
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """Stop at once (SIGKILL): clients see the connection drop, nothing is flushed."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def __enter__(self) -> 'LocalBroker':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class TcpLink:
    """Forward 127.0.0.1:<port> to an upstream port; `cut()` drops every connection and refuses new ones."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def restore(self) -> 'TcpLink':
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((LOCALHOST, self.port))
            listener.listen(16)
            self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        for sock in ([listener] if listener else []) + sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass    # already closed by the other side: nothing left to cut
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return   # the listener was closed by cut()
            try:
                upstream = socket.create_connection((LOCALHOST, self.upstream_port), timeout=2.0)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass    # the link was cut: both pumps end
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass    # the other pump closed it first

    def __enter__(self) -> 'TcpLink':
        return self.restore()

    def __exit__(self, *exc) -> None:
        self.cut()


def self_signed_tls(cert_path: str | Path, key_path: str | Path, host: str = LOCALHOST, days: int = 30) -> None:
    """A self-signed TLS certificate (PEM) for `host`, usable as its own CA file (tests, local brokers)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)),
                                                        x509.DNSName('localhost')]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(key_path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
