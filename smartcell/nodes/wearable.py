"""Wearable node: operator fatigue index from heart rate and motion, privacy by design."""
from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Imu
from std_msgs.msg import Float64

from smartcell.core.params import ConfigError
from smartcell.core.sensors.params import WEARABLE
from smartcell.core.sensors.wearable import FatigueConfig, FatigueEstimator, OperatorProfile, SimulatedOperator
from smartcell.nodes.common import (LATCHED_QOS, LEVEL_OK, LEVEL_STALE, STREAM_QOS, declare_config,
                                    diagnostic_array, diagnostic_status, run_node)


class Wearable(Node):
    """Turns an operator's wrist device into one number: a fatigue index in [0, 1].

    Privacy by design: heart rate and motion stay inside this node. It publishes only the index
    and data-quality counts, logs no biometric value, and has no MES interface; the supervisor
    uses the index to hand more of the work to the robot.
    Subscribes (source topics only; keep these device topics local to the wearable's host, see
    docs/sensors.md): `heart_rate_topic` (std_msgs/Float64, bpm), `imu_topic` (sensor_msgs/Imu,
    linear acceleration m/s^2).
    Publishes: `operator/fatigue` (std_msgs/Float64 in [0, 1], latched, publish_rate_hz; while
    the device is silent longer than stale_timeout_s: stale_fatigue_index);
    `/diagnostics` (`smartcell/wearable`: index, accepted/rejected sample counts, STALE when silent).
    Parameters: smartcell.core.sensors.params.WEARABLE (read-only, units in the names).
    """

    def __init__(self) -> None:
        super().__init__('wearable')
        c = self._config = declare_config(self, WEARABLE)
        try:
            fatigue = FatigueConfig(
                resting_hr_bpm=c.resting_hr_bpm, max_hr_bpm=c.max_hr_bpm, hr_weight=c.hr_weight,
                motion_full_scale_mps2=c.motion_full_scale_mps2, sustainable_load=c.sustainable_load,
                fatigue_time_constant_s=c.fatigue_time_constant_s,
                recovery_time_constant_s=c.recovery_time_constant_s)
        except ValueError as exc:
            raise ConfigError(f'wearable: {exc}') from exc
        self._estimator = FatigueEstimator(fatigue, initial=c.initial_fatigue, max_gap_s=c.stale_timeout_s)
        self._last_sample_s: float | None = None
        self._accel_mps2 = math.nan
        self._fatigue_pub = self.create_publisher(Float64, 'operator/fatigue', LATCHED_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._operator: SimulatedOperator | None = None
        self._sim_last_s: float | None = None
        if c.source == 'sim':
            self._operator = SimulatedOperator(OperatorProfile(resting_hr_bpm=c.resting_hr_bpm,
                                                               max_hr_bpm=c.max_hr_bpm), c.seed)
            self.create_timer(1.0 / c.sim_rate_hz, self._simulate)
        else:
            self.create_subscription(Float64, c.heart_rate_topic, self._on_heart_rate, STREAM_QOS)
            self.create_subscription(Imu, c.imu_topic, self._on_imu, STREAM_QOS)
        self.create_timer(1.0 / c.publish_rate_hz, self._publish)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _sample(self, hr_bpm: float, accel_mps2: float) -> None:
        now = self._now_s()
        if self._estimator.update(now, hr_bpm, accel_mps2) is not None:
            self._last_sample_s = now

    def _simulate(self) -> None:
        if self._operator is None:   # the timer exists only with source == 'sim'
            return
        now = self._now_s()
        dt = 1.0 / self._config.sim_rate_hz if self._sim_last_s is None else now - self._sim_last_s
        self._sim_last_s = now
        self._sample(*self._operator.step(dt))

    def _on_heart_rate(self, msg: Float64) -> None:
        # Without a motion reading the heart rate alone sets the load (gravity = no extra motion).
        self._sample(msg.data, self._accel_mps2 if math.isfinite(self._accel_mps2) else 9.80665)

    def _on_imu(self, msg: Imu) -> None:
        a = msg.linear_acceleration
        self._accel_mps2 = math.sqrt(a.x * a.x + a.y * a.y + a.z * a.z)

    def _publish(self) -> None:
        now = self._now_s()
        seen = self._last_sample_s
        stale = seen is None or now - seen > self._config.stale_timeout_s
        index = self._config.stale_fatigue_index if stale else self._estimator.index
        self._fatigue_pub.publish(Float64(data=float(index)))
        if stale:
            level = LEVEL_STALE
            message = (('no plausible sample yet' if seen is None else f'no plausible sample for {now - seen:.0f} s')
                       + f'; publishing the stale index {index:g}')
        else:
            level, message = LEVEL_OK, f'fatigue index {index:.2f}'
        values = {'fatigue_index': index, 'samples_accepted': self._estimator.accepted,
                  'samples_rejected': self._estimator.rejected, 'source': self._config.source}
        self._diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [
            diagnostic_status('smartcell/wearable', f'wearable/{self._config.source}', level, message, values)]))


def main(args=None) -> int:
    return run_node(lambda: Wearable(), args)


if __name__ == '__main__':
    raise SystemExit(main())
