"""Energy and emissions per part (ECPS), and the cell's environment limits. Pure Python + numpy.

Electrical power of a joint = mechanical power (torque x speed) + drive losses; the cell adds
its controller's idle power. `EnergyMeter` integrates power over time, splits it into cycles at
the supervisor's `unit_complete` events and converts each part's energy to CO2e with a grid
factor. Power: W; energy: J; time: s (ROS time); grid factor: g CO2e per kWh.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class DriveLossModel:
    """Losses of one motor + drive, simple enough to fit from two measurements.

    Copper loss ~ current^2 ~ torque^2; friction and iron loss ~ speed. Regenerated (negative)
    mechanical power is returned to the DC bus with `regen_efficiency`; 0 means the drive burns it
    in a brake resistor, so braking costs nothing back and nothing extra.
    """

    copper_loss_w_per_nm2: float = 0.0005   # W per (N m)^2 of joint torque
    friction_loss_w_per_rad_s: float = 2.0  # W per rad/s of joint speed
    regen_efficiency: float = 0.0           # [0, 1]

    def __post_init__(self) -> None:
        if self.copper_loss_w_per_nm2 < 0 or self.friction_loss_w_per_rad_s < 0:
            raise ValueError('drive loss coefficients must be >= 0')
        if not 0.0 <= self.regen_efficiency <= 1.0:
            raise ValueError(f'regen_efficiency must be in [0, 1], got {self.regen_efficiency}')


NO_LOSSES = DriveLossModel(0.0, 0.0, 0.0)


def joint_power_w(torque_nm: np.ndarray | float, speed_rad_s: np.ndarray | float,
                  losses: DriveLossModel) -> np.ndarray:
    """Electrical input power of each joint's drive, W (negative only when regenerating)."""
    tau = np.asarray(torque_nm, dtype=float)
    omega = np.asarray(speed_rad_s, dtype=float)
    mechanical = tau * omega
    drawn = np.where(mechanical >= 0.0, mechanical, losses.regen_efficiency * mechanical)
    return drawn + losses.copper_loss_w_per_nm2 * tau ** 2 + losses.friction_loss_w_per_rad_s * np.abs(omega)


def cell_power_w(torques_nm: Sequence[float], speeds_rad_s: Sequence[float], losses: DriveLossModel,
                 idle_power_w: float) -> float:
    """Controller idle power plus every joint's drive power, W. NaN if any input is not finite."""
    joints = joint_power_w(np.asarray(torques_nm, dtype=float), np.asarray(speeds_rad_s, dtype=float), losses)
    if joints.shape == () or not np.isfinite(joints).all():
        return math.nan
    return float(idle_power_w + joints.sum())


def co2e_g(energy_j: float, grid_g_per_kwh: float) -> float:
    return energy_j / J_PER_KWH * grid_g_per_kwh


@dataclass(frozen=True)
class CycleEnergy:
    """Energy of one produced unit, from the previous boundary to its unit_complete event."""

    unit: int
    order_id: str
    energy_j: float
    co2e_g: float
    duration_s: float
    unmetered_s: float      # time inside the cycle without usable power data (not counted in energy_j)

    def report(self) -> dict[str, object]:
        return {'unit': self.unit, 'energy_j': self.energy_j, 'co2e_g': self.co2e_g}


class EnergyMeter:
    """Integrates power samples (zero-order hold: a sample's power holds until the next one).

    Gaps longer than `max_gap_s` or NaN power are not guessed: that time is counted as
    unmetered and reported with the cycle, so a part's energy is never silently made up.
    """

    def __init__(self, grid_g_per_kwh: float, max_gap_s: float = 1.0) -> None:
        if grid_g_per_kwh < 0.0 or not math.isfinite(grid_g_per_kwh):
            raise ValueError(f'grid factor must be a finite number of g/kWh >= 0, got {grid_g_per_kwh}')
        self.grid_g_per_kwh = grid_g_per_kwh
        self._max_gap_s = max_gap_s
        self._last_t: float | None = None
        self._last_power_w = math.nan
        self._last_breakdown_w: np.ndarray | None = None
        self.energy_j_total = 0.0
        self.breakdown_j: np.ndarray | None = None     # per consumer (e.g. joint), same integration
        self._cycle_energy_j = 0.0
        self._cycle_start_s: float | None = None
        self._cycle_unmetered_s = 0.0
        self.last_cycle: CycleEnergy | None = None

    @property
    def power_w(self) -> float:
        return self._last_power_w

    def _advance(self, t_s: float) -> None:
        if self._last_t is None:
            self._last_t = t_s
            if self._cycle_start_s is None:
                self._cycle_start_s = t_s
            return
        dt = t_s - self._last_t
        if dt <= 0.0:
            return             # out-of-order or repeated stamp: nothing to integrate
        if dt > self._max_gap_s or not math.isfinite(self._last_power_w):
            self._cycle_unmetered_s += dt
        else:
            energy = self._last_power_w * dt
            self.energy_j_total += energy
            if self._last_breakdown_w is not None and self.breakdown_j is not None:
                self.breakdown_j += self._last_breakdown_w * dt
            self._cycle_energy_j += energy
        self._last_t = t_s

    def add_power(self, t_s: float, power_w: float, breakdown_w: Sequence[float] | np.ndarray | None = None) -> None:
        """A power sample at ROS time `t_s`; the previous sample's power is integrated up to `t_s`.

        `breakdown_w` optionally splits the power per consumer (e.g. per joint drive, W); it is
        integrated into `breakdown_j` over the same metered intervals.
        """
        self._advance(t_s)
        if self._last_t is not None and t_s >= self._last_t:
            self._last_power_w = float(power_w) if math.isfinite(power_w) else math.nan
            if breakdown_w is not None:
                parts = np.asarray(breakdown_w, dtype=float)
                if self.breakdown_j is None or self.breakdown_j.shape != parts.shape:
                    self.breakdown_j = np.zeros(parts.shape)
                self._last_breakdown_w = np.where(np.isfinite(parts), parts, 0.0)

    def close_cycle(self, t_s: float, unit: int, order_id: str = '') -> CycleEnergy:
        """End the current cycle at `t_s` (a unit_complete stamp) and start the next one there."""
        self._advance(t_s)
        start = self._cycle_start_s if self._cycle_start_s is not None else t_s
        cycle = CycleEnergy(unit=unit, order_id=order_id, energy_j=self._cycle_energy_j,
                            co2e_g=co2e_g(self._cycle_energy_j, self.grid_g_per_kwh),
                            duration_s=max(t_s - start, 0.0), unmetered_s=self._cycle_unmetered_s)
        self._cycle_energy_j = 0.0
        self._cycle_unmetered_s = 0.0
        self._cycle_start_s = t_s
        self.last_cycle = cycle
        return cycle

    def start_cycle(self, t_s: float) -> None:
        """Restart the cycle at `t_s` (job_started): idle time before a job is not a part's energy."""
        self._advance(t_s)
        self._cycle_energy_j = 0.0
        self._cycle_unmetered_s = 0.0
        self._cycle_start_s = t_s

    def report(self, stamp_s: float) -> dict[str, object]:
        """The `energy/report` JSON object (see docs/sensors.md)."""
        return {'stamp': stamp_s,
                'power_w': None if not math.isfinite(self._last_power_w) else self._last_power_w,
                'energy_j_total': self.energy_j_total,
                'last_cycle': None if self.last_cycle is None else self.last_cycle.report(),
                'grid_co2e_g_per_kwh': self.grid_g_per_kwh}


# ---------------------------------------------------------------------------------------------
# Environment (particulates, temperature, humidity)

LEVEL_OK, LEVEL_WARN, LEVEL_ERROR = 0, 1, 2    # same numbers as diagnostic_msgs/DiagnosticStatus


@dataclass(frozen=True)
class Limit:
    """Accepted band of one quantity: WARN outside [warn_low, warn_high], ERROR outside [alarm_low, alarm_high]."""

    unit: str
    warn_low: float
    warn_high: float
    alarm_low: float
    alarm_high: float


# PM: US EPA 24-h standards (PM2.5 35, PM10 150 ug/m3) for WARN, twice that for ERROR.
# Temperature/humidity: comfortable workshop band for WARN, equipment ratings for ERROR.
ENVIRONMENT_LIMITS: dict[str, Limit] = {
    'pm2_5': Limit('ug/m3', -math.inf, 35.0, -math.inf, 75.0),
    'pm10': Limit('ug/m3', -math.inf, 150.0, -math.inf, 300.0),
    'temperature': Limit('degC', 15.0, 30.0, 5.0, 40.0),
    'humidity': Limit('%', 20.0, 70.0, 10.0, 90.0),
}


def evaluate_environment(readings: Mapping[str, float],
                         limits: Mapping[str, Limit] = ENVIRONMENT_LIMITS) -> tuple[int, str]:
    """Worst level over all readings and the reasons. A NaN reading is an ERROR (a broken sensor
    must not read as clean air); a quantity with no reading at all is left to stale detection."""
    level = LEVEL_OK
    reasons = []
    for name, value in readings.items():
        limit = limits.get(name)
        if limit is None:
            raise ValueError(f'unknown environment quantity {name!r}; accepted: {", ".join(sorted(limits))}')
        if not math.isfinite(value):
            level = max(level, LEVEL_ERROR)
            reasons.append(f'{name} reading is not a number')
        elif not limit.alarm_low <= value <= limit.alarm_high:
            level = max(level, LEVEL_ERROR)
            reasons.append(f'{name} {value:.3g} {limit.unit} outside alarm band [{limit.alarm_low:g}, '
                           f'{limit.alarm_high:g}]')
        elif not limit.warn_low <= value <= limit.warn_high:
            level = max(level, LEVEL_WARN)
            reasons.append(f'{name} {value:.3g} {limit.unit} outside [{limit.warn_low:g}, {limit.warn_high:g}]')
    return level, '; '.join(reasons) if reasons else 'within limits'
