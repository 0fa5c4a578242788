"""Energy meter node: energy and CO2e per part (ECPS), and the cell's environment sensor."""
from __future__ import annotations

import json
import math
from functools import partial
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState, RelativeHumidity, Temperature
from std_msgs.msg import Float64, String

from smartcell.core.sensors.energy import (DriveLossModel, EnergyMeter as EnergyIntegrator, Limit, cell_power_w,
                                   evaluate_environment, joint_power_w)
from smartcell.core.params import ConfigError
from smartcell.core.sensors.params import ENERGY_METER
from smartcell.nodes.common import (LEVEL_ERROR, LEVEL_OK, LEVEL_STALE, LEVEL_WARN, STREAM_QOS, declare_config,
                                    diagnostic_array, diagnostic_status, run_node, stamp_to_s)
from smartcell.twin.energy_model import EnvironmentProfile, EnvironmentSimulator

# Reliable and transient-local with a few reports of history: a late subscriber (dashboard, MES
# bridge) gets the latest part reports at once, and volatile subscribers are compatible too.
REPORT_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


def _band(values: list[float], name: str, unit: str) -> tuple[float, float]:
    if len(values) != 2 or values[0] >= values[1]:
        raise ConfigError(f'energy_meter.{name} must be [low, high] with low < high ({unit}), got {values}')
    return values[0], values[1]


def environment_limits(c: Any) -> dict[str, Limit]:
    """Environment limits from the node parameters (validated: two increasing numbers each)."""
    pm25 = _band(c.pm2_5_limits_ug_m3, 'pm2_5_limits_ug_m3', 'warn, alarm in ug/m3')
    pm10 = _band(c.pm10_limits_ug_m3, 'pm10_limits_ug_m3', 'warn, alarm in ug/m3')
    t_warn = _band(c.temperature_warn_c, 'temperature_warn_c', 'degC')
    t_alarm = _band(c.temperature_alarm_c, 'temperature_alarm_c', 'degC')
    h_warn = _band(c.humidity_warn_pct, 'humidity_warn_pct', '%')
    h_alarm = _band(c.humidity_alarm_pct, 'humidity_alarm_pct', '%')
    return {'pm2_5': Limit('ug/m3', -math.inf, pm25[0], -math.inf, pm25[1]),
            'pm10': Limit('ug/m3', -math.inf, pm10[0], -math.inf, pm10[1]),
            'temperature': Limit('degC', t_warn[0], t_warn[1], t_alarm[0], t_alarm[1]),
            'humidity': Limit('%', h_warn[0], h_warn[1], h_alarm[0], h_alarm[1])}


class EnergyMeter(Node):
    """Meters the cell's electrical energy and splits it per produced part.

    Subscribes: source joint_states: `joint_states` (sensor_msgs/JointState: effort N m x velocity
    rad/s + drive loss model + idle_power_w); source power_meter: `power_topic` (std_msgs/Float64, W);
    `cell/events` (std_msgs/String JSON: `job_started` restarts the cycle, `unit_complete` closes it);
    environment topics: `environment/temperature` (sensor_msgs/Temperature, degC),
    `environment/humidity` (sensor_msgs/RelativeHumidity, 0-1), `environment/pm2_5_ug_m3` and
    `environment/pm10_ug_m3` (std_msgs/Float64, ug/m3).
    Publishes: `energy/report` (std_msgs/String JSON {"stamp", "power_w", "energy_j_total",
    "last_cycle": {"unit", "energy_j", "co2e_g"} | null, "grid_co2e_g_per_kwh"}; reliable,
    transient-local depth 10) at report_rate_hz and at once after every unit_complete;
    `/diagnostics` (`smartcell/energy_meter`: power, energy, last part, STALE without power input;
    `smartcell/energy_meter/environment`: readings and OK/WARN/ERROR against the limits, STALE when silent).
    Parameters: smartcell.core.sensors.params.ENERGY_METER (read-only, units in the names).
    """

    def __init__(self) -> None:
        super().__init__('energy_meter')
        c = self._config = declare_config(self, ENERGY_METER)
        self._limits = environment_limits(c)
        self._losses = DriveLossModel(c.copper_loss_w_per_nm2, c.friction_loss_w_per_rad_s,
                                      c.regen_efficiency)
        self._meter = EnergyIntegrator(c.grid_co2e_g_per_kwh, c.max_gap_s)
        self._last_power_input_s: float | None = None
        self._joint_names: list[str] = []
        self._bad_events = 0
        self._environment: dict[str, float] = {}
        self._environment_seen_s: dict[str, float] = {}
        self._report_pub = self.create_publisher(String, 'energy/report', REPORT_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if c.source == 'joint_states':
            self.create_subscription(JointState, 'joint_states', self._on_joint_states, STREAM_QOS)
        else:
            self.create_subscription(Float64, c.power_topic, self._on_power, STREAM_QOS)
        self.create_subscription(String, 'cell/events', self._on_event, EVENTS_QOS)
        self._env_sim: EnvironmentSimulator | None = None
        self._env_sim_last_s: float | None = None
        if c.environment == 'sim':
            self._env_sim = EnvironmentSimulator(EnvironmentProfile(), c.seed)
            self.create_timer(1.0, self._simulate_environment)
        elif c.environment == 'topics':
            self.create_subscription(Temperature, 'environment/temperature', self._on_temperature, STREAM_QOS)
            self.create_subscription(RelativeHumidity, 'environment/humidity', self._on_humidity, STREAM_QOS)
            self.create_subscription(Float64, 'environment/pm2_5_ug_m3', partial(self._on_dust, 'pm2_5'), STREAM_QOS)
            self.create_subscription(Float64, 'environment/pm10_ug_m3', partial(self._on_dust, 'pm10'), STREAM_QOS)
        self.create_timer(1.0 / c.report_rate_hz, self._publish_periodic)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs ------------------------------------------------------------------------------

    def _on_joint_states(self, msg: JointState) -> None:
        n = len(msg.name)
        if len(msg.effort) != n or len(msg.velocity) != n:
            power, joints = math.nan, None     # torque or speed missing: unknown power, counted as unmetered
        else:
            joints = joint_power_w(msg.effort, msg.velocity, self._losses)
            power = cell_power_w(list(msg.effort), list(msg.velocity), self._losses, self._config.idle_power_w)
            self._joint_names = list(msg.name)
        self._meter.add_power(stamp_to_s(msg.header.stamp), power, joints)
        self._last_power_input_s = self._now_s()

    def _on_power(self, msg: Float64) -> None:
        now = self._now_s()
        self._meter.add_power(now, msg.data)
        self._last_power_input_s = now

    def _on_event(self, msg: String) -> None:
        try:
            event = json.loads(msg.data)
            kind = event['type']
            stamp = float(event['stamp'])
        except (ValueError, KeyError, TypeError):
            self._bad_events += 1
            return
        if kind == 'unit_complete':
            try:
                unit = int(event['unit'])
            except (KeyError, TypeError, ValueError):
                self._bad_events += 1
                return
            self._meter.close_cycle(stamp, unit, str(event.get('order_id', '')))
            self._publish_report()
        elif kind == 'job_started':
            self._meter.start_cycle(stamp)

    def _on_temperature(self, msg: Temperature) -> None:
        self._on_environment('temperature', msg.temperature)

    def _on_humidity(self, msg: RelativeHumidity) -> None:
        self._on_environment('humidity', 100.0 * msg.relative_humidity)   # message 0..1, limits in %

    def _on_dust(self, name: str, msg: Float64) -> None:
        self._on_environment(name, msg.data)

    def _on_environment(self, name: str, value: float) -> None:
        self._environment[name] = float(value)
        self._environment_seen_s[name] = self._now_s()

    def _simulate_environment(self) -> None:
        now = self._now_s()
        if self._env_sim is None:   # the timer exists only with environment == 'sim'
            return
        dt = 1.0 if self._env_sim_last_s is None else now - self._env_sim_last_s
        self._env_sim_last_s = now
        for name, value in self._env_sim.step(dt).items():
            self._on_environment(name, value)

    # -- outputs -----------------------------------------------------------------------------

    def _publish_report(self) -> None:
        self._report_pub.publish(String(data=json.dumps(self._meter.report(self._now_s()))))

    def _publish_periodic(self) -> None:
        self._publish_report()
        now = self._now_s()
        statuses = [self._meter_status(now)]
        if self._config.environment != 'off':
            statuses.append(self._environment_status(now))
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), statuses))

    def _meter_status(self, now: float):
        seen = self._last_power_input_s
        last = self._meter.last_cycle
        values = {'power_w': self._meter.power_w, 'energy_j_total': self._meter.energy_j_total,
                  'last_unit': last.unit if last else 'none', 'last_unit_energy_j': last.energy_j if last else math.nan,
                  'last_unit_co2e_g': last.co2e_g if last else math.nan,
                  'last_unit_unmetered_s': last.unmetered_s if last else 0.0,
                  'grid_co2e_g_per_kwh': self._meter.grid_g_per_kwh, 'malformed_events': self._bad_events}
        if self._meter.breakdown_j is not None and len(self._joint_names) == len(self._meter.breakdown_j):
            values.update({f'energy_j_{name}': float(e) for name, e in zip(self._joint_names, self._meter.breakdown_j)})
        if seen is None or now - seen > self._config.stale_timeout_s:
            level, message = LEVEL_STALE, ('no power input yet' if seen is None else
                                           f'no power input for {now - seen:.1f} s; energy not metered')
        elif last is not None and last.unmetered_s > 0.0:
            level, message = LEVEL_WARN, f'unit {last.unit}: {last.unmetered_s:.1f} s without power data'
        elif not math.isfinite(self._meter.power_w):
            level, message = LEVEL_WARN, 'power unknown (NaN or incomplete joint states)'
        else:
            level, message = LEVEL_OK, f'{self._meter.power_w:.0f} W'
        return diagnostic_status('smartcell/energy_meter', f'power/{self._config.source}', level, message, values)

    def _environment_status(self, now: float):
        timeout = self._config.environment_timeout_s
        fresh = {k: v for k, v in self._environment.items() if now - self._environment_seen_s[k] <= timeout}
        silent = sorted(set(self._limits) - set(fresh))
        level, message = evaluate_environment(fresh, self._limits)
        if silent:
            level = level if level == LEVEL_ERROR else LEVEL_STALE    # an alarm stays visible
            message = f'no reading of {", ".join(silent)}; ' + message
        values = {f'{k}_{self._limits[k].unit.replace("/", "_per_").replace("%", "pct")}': v for k, v in fresh.items()}
        return diagnostic_status('smartcell/energy_meter/environment', f'environment/{self._config.environment}',
                                 level, message, values)


def main(args=None) -> int:
    return run_node(lambda: EnergyMeter(), args)


if __name__ == '__main__':
    raise SystemExit(main())
