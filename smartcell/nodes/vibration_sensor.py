"""Vibration sensor node: gearbox condition monitoring per joint (smart sensor: reports health, not samples)."""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from smartcell.core.params import ConfigError
from smartcell.core.sensors.params import VIBRATION_SENSOR
from smartcell.core.sensors.vibration import (FEATURE_COLUMNS, LEVEL_OK, AnalysisConfig, Assessment, GearboxMonitor,
                                              HealthBaseline, HealthThresholds, MonitorConfig, bearing_preset,
                                              feature_row, feature_vector_names)
from smartcell.core.sensors.vibration_baseline import baselines_for_monitor, read_baseline_file
from smartcell.nodes.common import (LEVEL_ERROR, LEVEL_STALE, LEVEL_WARN, STREAM_PUB_QOS, STREAM_QOS, declare_config,
                                    diagnostic_array, diagnostic_status, run_node, stamp_to_s)
from smartcell.twin.vibration_model import GearboxModel, GearboxVibration, fault_severity


class VibrationSensor(Node):
    """Monitors the gearbox of every joint from an accelerometer stream.

    Subscribes: `joint_states` (sensor_msgs/JointState: position rad x gear_ratio gives the shaft
    angle that sim windows are order-tracked on; velocity rad/s gives the shaft speed x
    gear_ratio; in sim also effort N m as load); source imu: `<raw_topic_prefix>/<joint>`
    (sensor_msgs/Imu, linear_acceleration.x m/s^2, one sample per message); source batch: the
    same topics as std_msgs/Float64MultiArray (consecutive samples at sample_rate_hz, m/s^2).
    Publishes: `vibration/features` (std_msgs/Float64MultiArray, one row per joint in joint_names
    order, columns FEATURE_COLUMNS; dim[0].label = 'joints:<names>', dim[1].label =
    'features:<columns>'; NaN = not available), after every completed window;
    `vibration/health` (diagnostic_msgs/DiagnosticArray, one status per gearbox, same as below)
    after every completed window; `/diagnostics` (1 Hz: per gearbox `smartcell/vibration_sensor/<joint>`,
    hardware id `gearbox/<joint>`, OK/WARN/ERROR from the health index, RUL and absolute RMS, STALE
    when its input stops; plus the node status `smartcell/vibration_sensor`).
    Parameters: smartcell.core.sensors.params.VIBRATION_SENSOR (read-only, units in the names);
    `baseline_file` starts every gearbox from a learnt baseline (ConfigError, exit 2, when the file
    is missing, corrupt or learnt for other joints / sample rate / window / bearing / band).
    """

    def __init__(self) -> None:
        super().__init__('vibration_sensor')
        c = self._config = declare_config(self, VIBRATION_SENSOR)
        band = tuple(c.envelope_band_hz)
        if len(band) != 2:
            raise ConfigError(f'vibration_sensor.envelope_band_hz must be [low, high] Hz, got {list(band)}')
        self._bearing = bearing_preset(c.bearing)
        # A learnt baseline file fixes the envelope band (its features were taken in it); checked
        # against this node's settings before anything runs: a mismatch is a ConfigError, exit 2.
        loaded = read_baseline_file(Path(c.baseline_file).expanduser()) if c.baseline_file else None
        if loaded is not None and band == (0.0, 0.0):
            band = loaded.envelope_band_hz
        try:
            analysis = AnalysisConfig(envelope_band_hz='auto' if band == (0.0, 0.0) else band,
                                      iso_zone_boundaries_mm_s=tuple(c.iso_zone_boundaries_mm_s))
            thresholds = HealthThresholds(warn=c.health_warn, alarm=c.health_alarm,
                                          clear_ratio=c.health_clear_ratio)
        except ValueError as exc:
            raise ConfigError(f'vibration_sensor: {exc}') from exc
        monitor_config = MonitorConfig(
            sample_rate_hz=c.sample_rate_hz, window_s=c.window_s, bearing=self._bearing, analysis=analysis,
            min_shaft_hz=c.min_shaft_hz, max_speed_variation=c.max_speed_variation,
            order_tracking=c.order_tracking,
            baseline_windows=c.baseline_windows,
            thresholds=thresholds,
            rms_alarm_mps2=c.rms_alarm_mps2, rul_warn_s=c.rul_warn_s, trend_windows=c.trend_windows)
        try:
            analysis.envelope_band(c.sample_rate_hz)
        except ValueError as exc:
            raise ConfigError(f'vibration_sensor.envelope_band_hz: {exc}') from exc
        self._joints: list[str] = list(c.joint_names)
        if c.fault_joint and c.fault_joint not in self._joints:
            raise ConfigError(f'vibration_sensor.fault_joint {c.fault_joint!r} is not a monitored joint; '
                              f'accepted: empty (all) or one of {", ".join(self._joints)}')
        baselines: dict[str, HealthBaseline | None] = {j: None for j in self._joints}
        if loaded is not None:
            baselines.update(baselines_for_monitor(
                loaded, self._joints, sample_rate_hz=c.sample_rate_hz, window_s=c.window_s, bearing=self._bearing,
                feature_names=feature_vector_names(c.sample_rate_hz, analysis), envelope_band_hz=band))
            self.get_logger().info(
                f'health rated against {loaded.path} from the first window (envelope band {band[0]:g}-{band[1]:g} Hz; '
                + ', '.join(f'{j} learnt at {loaded.shaft_hz[j]} Hz shaft' for j in self._joints) + ')')
        self._monitors = {j: GearboxMonitor(monitor_config, baselines[j]) for j in self._joints}
        self._speed_rad_s = {j: math.nan for j in self._joints}
        self._effort_nm = {j: 0.0 for j in self._joints}
        # Encoder position (rad) of each joint, now and at the previous joint state: the shaft angle
        # between them, per sample, is what order tracking resamples on (sim source).
        self._position_rad = {j: math.nan for j in self._joints}
        self._previous_position_rad = {j: math.nan for j in self._joints}
        self._last_input_s: dict[str, float | None] = {j: None for j in self._joints}
        self._rad_s_to_shaft_hz = c.gear_ratio / (2.0 * math.pi)
        # Simulation: one continuous generated stream per gearbox, advanced by joint-state stamps.
        rng = np.random.default_rng(c.seed)
        model = GearboxModel(sample_rate_hz=c.sample_rate_hz, gear_ratio=c.gear_ratio, bearing=self._bearing,
                             resonance_hz=min(5000.0, 0.3 * c.sample_rate_hz))
        self._sim = {j: GearboxVibration(model, rng.spawn(1)[0]) for j in self._joints} if c.source == 'sim' else {}
        self._sim_first_s: float | None = None
        self._sim_last_s: float | None = None
        self._sim_carry = 0.0          # fractional sample left over between joint states
        self._features_pub = self.create_publisher(Float64MultiArray, 'vibration/features', STREAM_PUB_QOS)
        self._health_pub = self.create_publisher(DiagnosticArray, 'vibration/health', STREAM_PUB_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(JointState, 'joint_states', self._on_joint_states, STREAM_QOS)
        prefix = c.raw_topic_prefix.rstrip('/')
        # Raw streams come in bursts (one Imu per sample, or DAQ blocks): the reader queue holds
        # 0.5 s of IMU samples or 50 batches, so a busy executor does not lose any.
        imu_qos = QoSProfile(depth=int(min(max(0.5 * c.sample_rate_hz, 100), 20000)),
                             history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        batch_qos = QoSProfile(depth=50, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        for joint in self._joints:
            if c.source == 'imu':
                self.create_subscription(Imu, f'{prefix}/{joint}', partial(self._on_imu, joint), imu_qos)
            elif c.source == 'batch':
                self.create_subscription(Float64MultiArray, f'{prefix}/{joint}', partial(self._on_batch, joint),
                                         batch_qos)
        self.create_timer(1.0, self._publish_diagnostics)

    # -- inputs ------------------------------------------------------------------------------

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState) -> None:
        for i, name in enumerate(msg.name):
            if name in self._speed_rad_s:
                self._speed_rad_s[name] = msg.velocity[i] if i < len(msg.velocity) else math.nan
                self._effort_nm[name] = msg.effort[i] if i < len(msg.effort) else 0.0
                self._previous_position_rad[name] = self._position_rad[name]
                self._position_rad[name] = msg.position[i] if i < len(msg.position) else math.nan
        if self._sim:
            self._simulate(stamp_to_s(msg.header.stamp))

    def _simulate(self, stamp_s: float) -> None:
        if self._sim_last_s is None or self._sim_first_s is None:
            self._sim_first_s = self._sim_last_s = stamp_s
            return
        dt = stamp_s - self._sim_last_s
        if dt <= 0.0:
            return                      # repeated or out-of-order stamp: nothing new happened
        self._sim_last_s = stamp_s
        if dt > max(1.0, 2.0 * self._config.window_s):
            self._sim_carry = 0.0       # a pause in the joint states: restart, do not invent a long signal
            return
        exact = dt * self._config.sample_rate_hz + self._sim_carry
        n = int(exact)
        self._sim_carry = exact - n
        c = self._config
        severity = fault_severity(stamp_s - self._sim_first_s, c.fault_onset_s, c.fault_initial_severity,
                                  c.fault_growth_per_s)
        completed = []
        for joint, generator in self._sim.items():
            faulty = c.fault != 'none' and c.fault_joint in ('', joint)
            speed = self._speed_rad_s[joint]
            samples = generator.generate(n, speed if math.isfinite(speed) else 0.0, self._effort_nm[joint],
                                         {c.fault: severity} if faulty else {})
            completed += self._feed(joint, samples, stamp_s, self._encoder_angles(joint, n))
        self._publish_windows(completed)

    def _on_imu(self, joint: str, msg: Imu) -> None:
        self._publish_windows(self._feed(joint, np.array([msg.linear_acceleration.x]), stamp_to_s(msg.header.stamp)))

    def _on_batch(self, joint: str, msg: Float64MultiArray) -> None:
        self._publish_windows(self._feed(joint, np.asarray(msg.data, dtype=float), self._now_s()))

    def _encoder_angles(self, joint: str, n: int) -> np.ndarray | None:
        """Shaft angle (turns) at each of `n` samples between the last two joint states, linear in
        between; None when either position is unknown (the monitor then integrates the speed)."""
        p0, p1 = self._previous_position_rad[joint], self._position_rad[joint]
        if not (math.isfinite(p0) and math.isfinite(p1)):
            return None
        return (p0 + (p1 - p0) * np.arange(1, n + 1) / max(n, 1)) * self._rad_s_to_shaft_hz

    def _feed(self, joint: str, samples: np.ndarray, stamp_s: float,
              angles: np.ndarray | None = None) -> list[tuple[str, Assessment]]:
        self._last_input_s[joint] = self._now_s()
        shaft_hz = abs(self._speed_rad_s[joint]) * self._rad_s_to_shaft_hz
        return [(joint, a) for a in self._monitors[joint].add_samples(samples, shaft_hz, stamp_s, angles)]

    # -- outputs -----------------------------------------------------------------------------

    def _publish_windows(self, completed: list[tuple[str, Assessment]]) -> None:
        if not completed:
            return
        msg = Float64MultiArray()
        msg.layout.dim = [
            MultiArrayDimension(label='joints:' + ','.join(self._joints), size=len(self._joints),
                                stride=len(self._joints) * len(FEATURE_COLUMNS)),
            MultiArrayDimension(label='features:' + ','.join(FEATURE_COLUMNS), size=len(FEATURE_COLUMNS),
                                stride=len(FEATURE_COLUMNS))]
        msg.data = [float(v) for j in self._joints for v in feature_row(self._monitors[j].last)]
        self._features_pub.publish(msg)
        self._health_pub.publish(diagnostic_array(self.get_clock().now().to_msg(),
                                                   self._gearbox_statuses(self._gearbox_levels())))

    def _gearbox_levels(self) -> list[tuple[str, int, str, dict[str, object]]]:
        """Per gearbox: joint, level, message, key values; STALE overrides when its input stopped."""
        now = self._now_s()
        out = []
        for joint in self._joints:
            monitor = self._monitors[joint]
            last = monitor.last
            seen = self._last_input_s[joint]
            level = last.level if last is not None else LEVEL_OK
            message = last.message if last is not None else 'waiting for the first window'
            if seen is None or now - seen > self._config.stale_timeout_s:
                level = LEVEL_STALE
                message = ('no accelerometer input yet' if seen is None else
                           f'no accelerometer input for {now - seen:.1f} s') + '; health unknown'
            values: dict[str, object] = {'samples_received': monitor.samples_received, 'windows': monitor.windows}
            values.update(last.key_values() if last is not None else {'state': 'waiting'})
            out.append((joint, level, message, values))
        return out

    @staticmethod
    def _gearbox_statuses(gearboxes: list[tuple[str, int, str, dict[str, object]]]) -> list:
        return [diagnostic_status(f'smartcell/vibration_sensor/{joint}', f'gearbox/{joint}', level, message, values)
                for joint, level, message, values in gearboxes]

    def _publish_diagnostics(self) -> None:
        gearboxes = self._gearbox_levels()
        levels = [level for _, level, _, _ in gearboxes]
        counts = {name: levels.count(level) for name, level in
                  (('ok', LEVEL_OK), ('warn', LEVEL_WARN), ('error', LEVEL_ERROR), ('stale', LEVEL_STALE))}
        node = diagnostic_status('smartcell/vibration_sensor', f'source/{self._config.source}', max(levels),
                                 f'{len(levels)} gearboxes: ' + ', '.join(f'{v} {k}' for k, v in counts.items() if v),
                                 {f'gearboxes_{k}': v for k, v in counts.items()})
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(),
                                                [node] + self._gearbox_statuses(gearboxes)))


def main(args=None) -> int:
    return run_node(lambda: VibrationSensor(), args)


if __name__ == '__main__':
    raise SystemExit(main())
