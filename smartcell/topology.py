"""The one list of nodes a cell runs, read by launch/cell.launch.py and by `smartcell sim`.

Pure Python (no rclpy, no launch): tests check the launch file against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal, Mapping

from smartcell.core.params import NodeParams

When = Literal['always', 'sim', 'hardware']
Group = Literal['cell', 'sensors', 'mes', 'hmi', 'record']
GROUPS: tuple[str, ...] = ('cell', 'sensors', 'mes', 'hmi', 'record')
# Started unless switched off; 'record' only on request (`smartcell sim --record`, `record:=true`).
DEFAULT_GROUPS: tuple[str, ...] = tuple(g for g in GROUPS if g != 'record')


@dataclass(frozen=True)
class NodeSpec:
    """One node of the cell. `name` is the node name, the executable and the YAML key."""

    name: str
    when: When               # 'sim': only with the twin; 'hardware': only without it
    params_ref: str          # 'module:ATTRIBUTE' of its NodeParams, importable without rclpy
    summary: str
    group: Group = 'cell'    # 'cell' always runs; 'sensors', 'mes' and 'hmi' can be switched off
    # What `ros2 launch ... sim:=true|false` sets on top of the cell file (smartcell sim adds lockstep).
    sim_overrides: Mapping[str, Any] = field(default_factory=lambda: {'use_sim_time': True})
    hardware_overrides: Mapping[str, Any] = field(default_factory=lambda: {'use_sim_time': False})
    shutdown_timeout_s: float = 5.0   # SIGTERM to SIGKILL: the time the node needs to close cleanly

    @property
    def module(self) -> str:
        return f'smartcell.nodes.{self.name}'

    @property
    def entry_point(self) -> str:
        """The console script (= executable = node name) target, for setup.py."""
        return f'{self.module}:main'

    def params(self) -> NodeParams:
        module, attribute = self.params_ref.split(':')
        return getattr(import_module(module), attribute)

    def runs(self, sim: bool) -> bool:
        return self.when == 'always' or (self.when == 'sim') == sim


CELL_NODES: tuple[NodeSpec, ...] = (
    # First, so that it is subscribed before the others publish (`smartcell sim --record`, `record:=true`).
    NodeSpec('recorder', 'always', 'smartcell.core.node_params:RECORDER',
             'every topic of the cell into a rosbag2-compatible MCAP file (optional group record)', 'record'),
    NodeSpec('twin', 'sim', 'smartcell.core.node_params:TWIN',
             'PyBullet twin: cobot, person, safety laser scanner; publishes /clock in sim',
             sim_overrides={}),            # the twin is the clock: never on sim time itself
    NodeSpec('scanner', 'always', 'smartcell.core.node_params:SCANNER',
             'people tracking from the safety laser scanner'),
    NodeSpec('arm', 'always', 'smartcell.core.node_params:ARM',
             'one arm interface: sim backend (twin) or ros2_control backend (vendor driver)',
             sim_overrides={'use_sim_time': True, 'backend': 'sim'},
             hardware_overrides={'use_sim_time': False, 'backend': 'ros2_control'}),
    NodeSpec('supervisor', 'always', 'smartcell.core.node_params:SUPERVISOR',
             'cell state machine, safety zones / SSM, speed scale, tasks'),
    NodeSpec('robot_state', 'always', 'smartcell.core.node_params:ROBOT_STATE',
             'TF tree (layout, robot links from joint_states, people) and /robot_description'),
    NodeSpec('vibration_sensor', 'always', 'smartcell.core.sensors.params:VIBRATION_SENSOR',
             'gearbox vibration analytics: features, health, fault class, RUL', 'sensors'),
    NodeSpec('energy_meter', 'always', 'smartcell.core.sensors.params:ENERGY_METER',
             'energy and CO2e per cycle and part, environment sensor', 'sensors'),
    NodeSpec('wearable', 'always', 'smartcell.core.sensors.params:WEARABLE',
             'operator fatigue index (raw biometrics never leave the node)', 'sensors'),
    NodeSpec('mes_bridge', 'always', 'smartcell.core.mes.params:MES_BRIDGE',
             'ISA-95 records to OPC UA and MQTT through a store-and-forward outbox', 'mes',
             shutdown_timeout_s=15.0),     # flushes its outbox and closes its servers
    NodeSpec('hmi', 'always', 'smartcell.core.node_params:HMI',
             'operator station in the browser: steps, cell and safety state, buttons behind a login', 'hmi'),
)


def nodes_for(sim: bool, groups: tuple[str, ...] = DEFAULT_GROUPS) -> tuple[NodeSpec, ...]:
    """The nodes a cell starts, in start order; `groups` selects the optional ones."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f'unknown node group(s) {sorted(unknown)}; accepted: {", ".join(GROUPS)}')
    return tuple(n for n in CELL_NODES if n.runs(sim) and (n.group == 'cell' or n.group in groups))


def param_registry() -> dict[str, NodeParams]:
    """Node name -> its parameter specs, for validating a config file."""
    return {n.name: n.params() for n in CELL_NODES}
