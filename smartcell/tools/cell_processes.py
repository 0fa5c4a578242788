"""Start and stop the cell's node processes (the set in smartcell.topology) outside `ros2 launch`.

Used by `smartcell sim`, the campaign, the node tests and the benchmarks, so every one of them runs
the very executables the launch file runs, each in its own process, over real DDS.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import yaml

from smartcell.topology import NodeSpec

if TYPE_CHECKING:
    from smartcell.core.params import NodeParams


def ros_value(value: object) -> str:
    """A parameter value in `-p name:=value` syntax (YAML)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(ros_value(v) for v in value) + ']'
    if isinstance(value, str):
        return "'" + value + "'"
    return repr(value)


def node_command(spec_module: str, name: str, params_file: Path | None,
                 overrides: Mapping[str, object], namespace: str = '',
                 overrides_file: Path | None = None) -> list[str]:
    """The node's command line. With a params file, overrides go in a second file for the same node
    key: a plain `-p` is a `/**` (all nodes) value, which the file's node section would beat."""
    command = [sys.executable, '-m', spec_module, '--ros-args', '-r', f'__node:={name}']
    if namespace:
        command += ['-r', f'__ns:={namespace}']
    if params_file is not None:
        command += ['--params-file', str(params_file)]
    if params_file is not None and overrides:
        if overrides_file is None:
            raise ValueError('overrides on top of a params file need an overrides_file to write them to')
        overrides_file.parent.mkdir(parents=True, exist_ok=True)
        overrides_file.write_text(yaml.safe_dump(overrides_document(name, overrides)))
        return command + ['--params-file', str(overrides_file)]
    for key, value in overrides.items():
        command += ['-p', f'{key}:={ros_value(value)}']
    return command


class OverrideRefused(ValueError):
    """A command-line parameter override that cannot be applied; the message says why and what to do."""


def parse_override(text: str, registry: Mapping[str, 'NodeParams'],
                   reserved: Mapping[tuple[str, str], str] = {}) -> tuple[str, str, object]:
    """'node.name:=value' (or '=') -> (node, name, value), checked against the node's ParamSpec.

    The value is read as YAML, like ROS does (`3` an int, `[1, 2]` a list, `'x'` a string).
    `reserved` maps (node, name) to the option that sets it instead.
    """
    import yaml

    from smartcell.core.params import ConfigError
    key, sep, raw = text.partition(':=') if ':=' in text else text.partition('=')
    node, dot, name = key.strip().partition('.')
    if not sep or not dot or not node or not name:
        raise OverrideRefused(f'override {text!r} must read NODE.NAME:=VALUE (e.g. mes_bridge.mqtt_port:=1884)')
    if node not in registry:
        raise OverrideRefused(f'override {text!r}: unknown node {node!r}; accepted: {", ".join(sorted(registry))}')
    specs = {spec.name: spec for spec in registry[node].specs}
    if name not in specs:
        raise OverrideRefused(f'override {text!r}: node {node!r} has no parameter {name!r}; accepted: '
                              f'{", ".join(sorted(specs))}')
    if (node, name) in reserved:
        raise OverrideRefused(f'override {text!r} refused: {reserved[(node, name)]}')
    try:
        value = yaml.safe_load(raw) if raw.strip() else ''
        return node, name, specs[name].validate(value, where=f'{node}.')
    except (yaml.YAMLError, ConfigError) as exc:
        raise OverrideRefused(f'override {text!r}: {exc}') from exc


def launch_overrides(configurations: Mapping[str, str], declared: Iterable[str],
                     registry: Mapping[str, 'NodeParams']) -> list[tuple[str, str, object]]:
    """`ros2 launch ... node.name:=value` arguments as overrides; any other undeclared argument is refused
    (ros2 launch would otherwise ignore it without a word)."""
    overrides = []
    for key, value in configurations.items():
        if key in declared or key.startswith('_'):
            continue
        if '.' not in key:
            raise OverrideRefused(f'launch argument {key}:={value!r} is not an argument of cell.launch.py '
                                  f'({", ".join(sorted(declared))}); for a node parameter write NODE.{key}:=VALUE '
                                  f'(e.g. mes_bridge.{key}:={value})')
        overrides.append(parse_override(f'{key}:={value}', registry))
    return overrides


def overrides_document(name: str, values: Mapping[str, object]) -> dict:
    """A params file section for one node, matched in any namespace, read after the cell file so it wins."""
    return {f'/**/{name}': {'ros__parameters': dict(values)}}


def merge_overrides(base: Mapping[str, Mapping[str, object]],
                    extra: Iterable[tuple[str, str, object]]) -> dict[str, dict[str, object]]:
    """Per-node overrides with the command line's last: they go in a file after the params file, so they win."""
    merged = {node: dict(values) for node, values in base.items()}
    for node, name, value in extra:
        merged.setdefault(node, {})[name] = value
    return merged


# DDS domains a private cell picks from. On Linux only 0-101 are safe (ROS 2 docs, "The ROS_DOMAIN_ID"):
# a higher domain's ports fall in the kernel's ephemeral range (32768-60999), where any socket may hold
# them, and discovery then fails now and then. 0 stays for the real cell on the network.
PRIVATE_DOMAIN_IDS = range(1, 102)


def random_private_domain() -> int:
    return random.SystemRandom().choice(PRIVATE_DOMAIN_IDS)


DDS_PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')   # Fast DDS 2.x, 3.x


def dds_profile_file() -> Path | None:
    """config/fastdds_profile.xml, installed (share directory) or in this checkout; None without either."""
    from smartcell.share import ShareFileMissing, share_file
    try:
        return share_file('config', 'fastdds_profile.xml')
    except ShareFileMissing:
        checkout = Path(__file__).resolve().parents[2] / 'config' / 'fastdds_profile.xml'
        return checkout if checkout.is_file() else None


def with_dds_profile(env: dict[str, str]) -> dict[str, str]:
    """`env` with smartcell's Fast DDS profile (a 4 s participant lease: a killed node leaves the ROS
    graph within 4 s, not 20 s), unless it already names a profile file of its own."""
    path = dds_profile_file()
    if path is not None and not any(env.get(name) for name in DDS_PROFILE_VARIABLES):
        env.update({name: str(path) for name in DDS_PROFILE_VARIABLES})
    return env


def isolated_ros_env(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """Environment for a private simulated cell: never talks to a real cell on the network."""
    env = with_dds_profile(dict(os.environ if base is None else base))
    env['ROS_DOMAIN_ID'] = str(domain_id if domain_id is not None else
                               env.get('SMARTCELL_SIM_DOMAIN_ID') or random_private_domain())
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env



def _die_with_parent():
    """A pre-exec hook (Linux): the node gets SIGTERM when the process that started it dies, even by
    kill -9, so a killed `smartcell sim` or test never leaves a cell running in its DDS domain.
    The kernel ties this to the starting *thread*: only set from the main thread."""
    if sys.platform != 'linux' or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes
    libc = ctypes.CDLL('libc.so.6', use_errno=True)

    def hook() -> None:
        libc.prctl(1, signal.SIGTERM)        # PR_SET_PDEATHSIG
    return hook

@dataclass
class CellProcesses:
    """A set of node processes with their logs; stop() is safe to call twice."""

    log_dir: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)       # stopped on purpose (stop_one) and not restarted

    def start(self, name: str, command: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Appended: a restarted node's log keeps what its previous run said (often why it was restarted).
        restarted = name in self.processes
        self.stopped.discard(name)
        log = open(self.log_dir / f'{name}.log', 'ab')
        if restarted:
            log.write(f'--- {name} restarted at {time.strftime("%Y-%m-%dT%H:%M:%S")} ---\n'.encode())
            log.flush()
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                                start_new_session=True, preexec_fn=_die_with_parent())
        log.close()

    def start_nodes(self, specs: Iterable[NodeSpec], params_file: Path | None,
                    overrides: Mapping[str, Mapping[str, object]], namespace: str = '') -> None:
        for spec in specs:
            self.start(spec.name, node_command(spec.module, spec.name, params_file, overrides.get(spec.name, {}),
                                               namespace, self.log_dir / f'{spec.name}.overrides.yaml'))

    def failed(self) -> dict[str, int]:
        """Processes that have exited, with their exit codes (one stop_one ended cleanly is not failed)."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None
                and not (name in self.stopped and p.returncode in (0, -signal.SIGINT))}

    def check_alive(self) -> None:
        """RuntimeError naming the first node that has exited, with the end of its log."""
        failed = self.failed()
        if failed:
            name, code = next(iter(failed.items()))
            raise RuntimeError(f'node {name!r} exited with code {code}; its log ends with:\n{self.log_tail(name)}')

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f'{name}.log'
        if not path.exists():
            return ''
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])

    def kill(self, name: str) -> None:
        """SIGKILL one process (crash tests)."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_one(self, name: str, timeout_s: float = 10.0) -> None:
        """SIGINT one process and wait for it (SIGKILL after `timeout_s`): a node shut down on purpose."""
        process = self.processes[name]
        self.stopped.add(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop(self, timeout_s: float = 10.0) -> dict[str, int]:
        """SIGINT all, SIGKILL what does not end in time; returns the nodes that failed: those dead before
        the stop, and those that exited with an error code on it (a clean shutdown is 0)."""
        dead_before = self.failed()
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        return {**{name: p.returncode for name, p in self.processes.items()
                   if p.returncode not in (0, -signal.SIGINT)}, **dead_before}
