"""Simulated cell electrics and environment (numpy only, seeded).

* `DEFAULT_DRIVE_LOSSES` / `CONTROLLER_IDLE_W`: the loss model and idle power the energy meter
  uses in simulation (the joint torques and speeds come from the twin's joint states).
* `EnvironmentSimulator`: particulates, temperature and humidity as slow mean-reverting random
  walks with occasional dust events (e.g. a grinder nearby), reproducible from a seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smartcell.core.sensors.energy import DriveLossModel

# UR5e-class: control box ~ 90 W standing, arm brakes released; a few % copper loss at load.
CONTROLLER_IDLE_W = 90.0
DEFAULT_DRIVE_LOSSES = DriveLossModel(copper_loss_w_per_nm2=0.0005, friction_loss_w_per_rad_s=2.0,
                                      regen_efficiency=0.0)


@dataclass(frozen=True)
class EnvironmentProfile:
    pm2_5_ug_m3: float = 8.0            # mean levels of a clean assembly hall
    pm10_ug_m3: float = 15.0
    temperature_c: float = 22.0
    humidity_pct: float = 45.0
    reversion_per_s: float = 0.01       # how fast the walk returns to the mean, 1/s
    dust_events_per_h: float = 2.0      # a nearby grinder or sweeping
    dust_event_ug_m3: float = 60.0      # PM2.5 added at the peak of an event (PM10 gets 2x)
    dust_decay_per_s: float = 1.0 / 120.0


class EnvironmentSimulator:
    """Call `step(dt_s)`; returns pm2_5, pm10 (ug/m3), temperature (degC), humidity (%)."""

    def __init__(self, profile: EnvironmentProfile, seed: int) -> None:
        self._p = profile
        self._rng = np.random.default_rng(seed)
        self._state = np.array([profile.pm2_5_ug_m3, profile.pm10_ug_m3, profile.temperature_c,
                                profile.humidity_pct])
        self._dust_ug_m3 = 0.0

    def step(self, dt_s: float) -> dict[str, float]:
        p = self._p
        dt = max(dt_s, 0.0)
        mean = np.array([p.pm2_5_ug_m3, p.pm10_ug_m3, p.temperature_c, p.humidity_pct])
        spread = np.array([1.0, 2.0, 0.05, 0.3])      # per sqrt(s): slow drifts
        noise = spread * math.sqrt(dt) * self._rng.standard_normal(4)
        self._state += p.reversion_per_s * (mean - self._state) * dt + noise
        if self._rng.random() < p.dust_events_per_h / 3600.0 * dt:
            self._dust_ug_m3 += p.dust_event_ug_m3
        self._dust_ug_m3 *= math.exp(-p.dust_decay_per_s * dt)
        pm2_5, pm10, temperature, humidity = self._state
        return {'pm2_5': max(pm2_5 + self._dust_ug_m3, 0.0), 'pm10': max(pm10 + 2.0 * self._dust_ug_m3, 0.0),
                'temperature': float(temperature), 'humidity': float(min(max(humidity, 0.0), 100.0))}
