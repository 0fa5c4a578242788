"""Operator fatigue index from a wearable's heart rate and motion. Pure Python + numpy.

Privacy by design: raw heart rate and motion enter `FatigueEstimator.update` and stay in this
object; only the index in [0, 1] (and counts of rejected samples) ever leave it. The node
publishes nothing else and logs no biometric value.

Model: the workload L in [0, 1] mixes heart-rate reserve (Karvonen: (HR - HR_rest) /
(HR_max - HR_rest)) with dynamic acceleration. Fatigue F follows a fatigue-recovery balance
around a sustainable load L_s (about 30 % of heart-rate reserve can be kept up for a shift):
    dF/dt = max(L - L_s, 0) / (1 - L_s) (1 - F) / tau_fatigue - max(L_s - L, 0) / L_s F / tau_recovery,
integrated exactly for each sample interval (L held constant). Its right-hand side rises with L
for every F in [0, 1], so F is monotone in the workload: more heart-rate load never gives a lower
index, and F stays in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True)
class FatigueConfig:
    resting_hr_bpm: float = 65.0
    max_hr_bpm: float = 185.0              # 220 - age is the usual estimate; set per operator
    hr_weight: float = 0.7                 # share of heart rate in the workload, the rest is motion
    motion_full_scale_mps2: float = 4.0    # dynamic acceleration counted as full physical load
    sustainable_load: float = 0.3          # workload an operator keeps up for a shift (~30 % HR reserve)
    fatigue_time_constant_s: float = 3600.0   # at full load, 1 - F shrinks by e in this time
    recovery_time_constant_s: float = 1200.0  # at rest, F shrinks by e in this time
    min_plausible_hr_bpm: float = 30.0     # outside: sensor off the skin or motion artefact
    max_plausible_hr_bpm: float = 230.0

    def __post_init__(self) -> None:
        if not 0.0 < self.resting_hr_bpm < self.max_hr_bpm:
            raise ValueError(f'need 0 < resting_hr_bpm < max_hr_bpm, got {self.resting_hr_bpm}, {self.max_hr_bpm}')
        if not 0.0 <= self.hr_weight <= 1.0:
            raise ValueError(f'hr_weight must be in [0, 1], got {self.hr_weight}')
        if not 0.0 < self.sustainable_load < 1.0:
            raise ValueError(f'sustainable_load must be in (0, 1), got {self.sustainable_load}')
        if self.fatigue_time_constant_s <= 0.0 or self.recovery_time_constant_s <= 0.0:
            raise ValueError('fatigue and recovery time constants must be > 0 s')


def workload(hr_bpm: float, accel_magnitude_mps2: float, config: FatigueConfig) -> float:
    """Workload in [0, 1] from heart-rate reserve and dynamic acceleration (|a| minus gravity)."""
    reserve = (hr_bpm - config.resting_hr_bpm) / (config.max_hr_bpm - config.resting_hr_bpm)
    motion = abs(accel_magnitude_mps2 - GRAVITY_MPS2) / config.motion_full_scale_mps2
    load = config.hr_weight * min(max(reserve, 0.0), 1.0) + (1.0 - config.hr_weight) * min(motion, 1.0)
    return float(min(max(load, 0.0), 1.0))


def fatigue_step(fatigue: float, load: float, dt_s: float, config: FatigueConfig) -> float:
    """Exact solution of the fatigue-recovery balance over `dt_s` at constant `load`.

    Load above the sustainable level builds fatigue, load below it lets the operator recover, in
    proportion to the distance from that level; at exactly that level nothing changes.
    """
    sustainable = config.sustainable_load
    gain = max(load - sustainable, 0.0) / (1.0 - sustainable) / config.fatigue_time_constant_s
    recovery = max(sustainable - load, 0.0) / sustainable / config.recovery_time_constant_s
    rate = gain + recovery
    if rate == 0.0:
        return float(fatigue)
    steady = gain / rate
    return float(steady + (fatigue - steady) * math.exp(-rate * max(dt_s, 0.0)))


class FatigueEstimator:
    """Holds the index; `update` takes one sample and returns the index, or None if the sample was rejected."""

    def __init__(self, config: FatigueConfig, initial: float = 0.0, max_gap_s: float = 10.0) -> None:
        self._config = config
        self._fatigue = float(min(max(initial, 0.0), 1.0))
        self._max_gap_s = max_gap_s
        self._last_t: float | None = None
        self._last_load: float | None = None
        self.rejected = 0          # implausible or non-finite samples (a count, not values)
        self.accepted = 0

    @property
    def index(self) -> float:
        return self._fatigue

    def update(self, t_s: float, hr_bpm: float, accel_magnitude_mps2: float) -> float | None:
        c = self._config
        if not (math.isfinite(hr_bpm) and math.isfinite(accel_magnitude_mps2)
                and c.min_plausible_hr_bpm <= hr_bpm <= c.max_plausible_hr_bpm):
            self.rejected += 1
            return None
        if self._last_t is not None and t_s < self._last_t:
            self.rejected += 1
            return None
        load = workload(hr_bpm, accel_magnitude_mps2, c)
        if self._last_t is not None and self._last_load is not None:
            # The previous load holds until now; a long gap is not extrapolated (only its first max_gap_s).
            self._fatigue = fatigue_step(self._fatigue, self._last_load, min(t_s - self._last_t, self._max_gap_s), c)
        self._last_t = t_s
        self._last_load = load
        self.accepted += 1
        return self._fatigue


@dataclass(frozen=True)
class OperatorProfile:
    resting_hr_bpm: float = 68.0
    max_hr_bpm: float = 185.0
    heavy_task_share: float = 0.4       # fraction of time in heavy tasks (lifting, fixture loading)
    task_switch_per_s: float = 1.0 / 90.0
    light_reserve: float = 0.2          # heart-rate reserve used in light / heavy work
    heavy_reserve: float = 0.55
    cardiac_drift_per_h: float = 0.08   # heart rate creeps up over a shift at the same work


class SimulatedOperator:
    """Seeded heart rate (bpm) and wrist acceleration magnitude (m/s^2) of an operator at work."""

    def __init__(self, profile: OperatorProfile, seed: int) -> None:
        self._p = profile
        self._rng = np.random.default_rng(seed)
        self._heavy = False
        self._elapsed_s = 0.0
        self._hr_bpm = profile.resting_hr_bpm

    def step(self, dt_s: float) -> tuple[float, float]:
        p = self._p
        dt = max(dt_s, 0.0)
        self._elapsed_s += dt
        if self._rng.random() < p.task_switch_per_s * dt:
            self._heavy = self._rng.random() < p.heavy_task_share
        reserve = (p.heavy_reserve if self._heavy else p.light_reserve) + p.cardiac_drift_per_h * self._elapsed_s / 3600
        target = p.resting_hr_bpm + reserve * (p.max_hr_bpm - p.resting_hr_bpm)
        self._hr_bpm += (target - self._hr_bpm) * (1.0 - math.exp(-dt / 30.0))   # heart rate lags ~30 s
        hr = self._hr_bpm + 2.0 * self._rng.standard_normal()
        motion = (2.5 if self._heavy else 0.8) * abs(self._rng.standard_normal())
        return float(hr), float(GRAVITY_MPS2 + motion)
