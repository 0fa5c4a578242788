"""Simulated gearbox accelerometer: a physically motivated signal from a joint's speed and load.

numpy only (no PyBullet): the vibration sensor node feeds it the joint states the twin publishes.
The monitored shaft is the motor side of the joint's gearbox (speed = joint speed x gear ratio),
carried by a deep-groove bearing. Components (acceleration in m/s^2):

* residual imbalance at 1x, growing with speed^2 (centrifugal force), and the gear mesh;
* imbalance: 1x line ~ severity x speed^2;  misalignment: 2x (and some 1x) ~ severity x load;
* looseness: half orders and a comb of harmonics (a clipped, rattling response) ~ severity x load;
* outer-race defect: impacts at BPFO ringing a structural resonance, fixed in the load zone;
* inner-race defect: impacts at BPFI, amplitude-modulated once a turn as the defect passes the load zone;
* broadband Gaussian noise.

Signals stay continuous across calls (phases and the resonance ringing carry over), so chunks
generated per joint-state message join into seamless windows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from smartcell.core.sensors.vibration import BearingGeometry, bearing_preset, fault_frequencies

FAULT_KINDS = ('none', 'imbalance', 'misalignment', 'outer_race', 'inner_race', 'looseness')


@dataclass(frozen=True)
class GearboxModel:
    sample_rate_hz: float = 25600.0
    gear_ratio: float = 101.0                # motor turns per joint turn (strain-wave gear of a UR joint)
    bearing: BearingGeometry = field(default_factory=lambda: bearing_preset('6205'))
    rated_torque_nm: float = 150.0           # joint torque that counts as full load
    resonance_hz: float = 5000.0             # housing resonance the bearing impacts excite
    resonance_decay_per_s: float = 1200.0
    mesh_order: float = 2.0                  # strain wave: the flexspline meshes twice per turn
    noise_mps2: float = 0.05                 # broadband noise, RMS
    residual_imbalance_mps2: float = 0.05    # healthy 1x at the reference speed
    mesh_mps2: float = 0.03                  # healthy mesh line at full load
    reference_shaft_hz: float = 15.0         # speed at which line amplitudes hold (~1 rad/s at the joint)
    impact_mps2: float = 8.0                 # bearing impact amplitude at severity 1, full load

    def __post_init__(self) -> None:
        if self.resonance_hz >= self.sample_rate_hz / 2.0:
            raise ValueError(f'resonance_hz {self.resonance_hz} must be below Nyquist ({self.sample_rate_hz / 2} Hz)')


def fault_severity(elapsed_s: float, onset_s: float, initial: float, growth_per_s: float) -> float:
    """Severity in [0, 1]: 0 before onset, then exponential growth from `initial` (spall growth is
    roughly exponential until it saturates)."""
    if elapsed_s < onset_s or initial <= 0.0:
        return 0.0
    log_severity = math.log(initial) + growth_per_s * (elapsed_s - onset_s)   # log space: no overflow
    return float(math.exp(min(log_severity, 0.0)))


class GearboxVibration:
    """Continuous accelerometer stream of one gearbox; state = phases and ringing tail."""

    def __init__(self, model: GearboxModel, rng: np.random.Generator) -> None:
        self._model = model
        self._rng = rng
        self._shaft_turns = 0.0          # shaft angle in turns
        self._outer_cycles = 0.0         # defect passages, counted in cycles
        self._inner_cycles = 0.0
        self._loose_phase = rng.uniform(0.0, 2.0 * math.pi)
        length = int(math.ceil(5.0 / model.resonance_decay_per_s * model.sample_rate_hz))
        t = np.arange(length) / model.sample_rate_hz
        self._kernel = np.exp(-model.resonance_decay_per_s * t) * np.sin(2.0 * math.pi * model.resonance_hz * t)
        self._tail = np.zeros(length - 1)

    def shaft_hz(self, joint_speed_rad_s: float) -> float:
        return abs(joint_speed_rad_s) * self._model.gear_ratio / (2.0 * math.pi)

    def generate(self, n_samples: int, joint_speed_rad_s: float, joint_effort_nm: float,
                 faults: Mapping[str, float]) -> np.ndarray:
        """`n_samples` of acceleration (m/s^2) at constant speed and load; `faults`: kind -> severity [0, 1]."""
        m = self._model
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f'unknown fault kind(s) {sorted(unknown)}; accepted: {", ".join(FAULT_KINDS)}')
        fs = m.sample_rate_hz
        fr = self.shaft_hz(joint_speed_rad_s) if math.isfinite(joint_speed_rad_s) else 0.0
        load = min(max(0.2 + abs(joint_effort_nm) / m.rated_torque_nm, 0.2), 1.5) if math.isfinite(
            joint_effort_nm) else 0.2
        speed = min(fr / m.reference_shaft_hz, 1.0)     # forcing of the speed-driven lines, saturating
        speed2 = (fr / m.reference_shaft_hz) ** 2        # centrifugal force grows with speed^2
        turns = self._shaft_turns + fr * np.arange(1, n_samples + 1) / fs
        angle = 2.0 * math.pi * turns
        x = m.noise_mps2 * self._rng.standard_normal(n_samples)
        x += m.residual_imbalance_mps2 * speed2 * np.sin(angle)
        x += m.mesh_mps2 * load * speed * np.sin(m.mesh_order * angle + 0.3)
        s = faults.get('imbalance', 0.0)
        if s > 0.0:
            x += 2.0 * s * speed2 * np.sin(angle + 0.1)
        s = faults.get('misalignment', 0.0)
        if s > 0.0:
            x += s * load * speed * (1.5 * np.sin(2.0 * angle + 0.7) + 0.5 * np.sin(angle + 1.1))
        s = faults.get('looseness', 0.0)
        if s > 0.0:
            # A loose mount rattles: the response is clipped, which puts energy at half orders
            # (the mount lifts every other turn) and a comb of harmonics.
            rattle = np.clip(np.sin(0.5 * angle + self._loose_phase) + 0.6 * np.sin(angle), -0.6, 0.9)
            x += 1.5 * s * load * speed * rattle
        impulses = np.zeros(n_samples)
        freqs = fault_frequencies(m.bearing, fr)
        s = faults.get('outer_race', 0.0)
        self._outer_cycles = self._add_impacts(impulses, self._outer_cycles, freqs.bpfo_hz,
                                               s * m.impact_mps2 * load, None)
        s = faults.get('inner_race', 0.0)
        self._inner_cycles = self._add_impacts(impulses, self._inner_cycles, freqs.bpfi_hz,
                                               s * m.impact_mps2 * load, angle)
        ringing = np.convolve(impulses, self._kernel)
        ringing[:self._tail.size] += self._tail
        self._tail = ringing[n_samples:].copy()
        self._shaft_turns = float(turns[-1] % 2.0) if n_samples else self._shaft_turns   # 2: half orders
        return x + ringing[:n_samples]

    def _add_impacts(self, impulses: np.ndarray, cycles: float, rate_hz: float, amplitude: float,
                     angle: np.ndarray | None) -> float:
        """Put unit impacts where the defect phase crosses a whole cycle; returns the new phase."""
        n = impulses.size
        phase = cycles + rate_hz * np.arange(1, n + 1) / self._model.sample_rate_hz
        if amplitude > 0.0 and rate_hz > 0.0:
            hits = np.flatnonzero(np.diff(np.floor(np.concatenate(([cycles], phase)))) > 0)
            gain = amplitude * (1.0 + 0.1 * self._rng.standard_normal(hits.size))
            if angle is not None:      # the inner-race defect meets the load zone once per turn
                gain *= 0.6 + 0.4 * np.cos(angle[hits])
            impulses[hits] += gain
        return float(phase[-1] % 1.0) if n else cycles


# ---------------------------------------------------------------------------------------------
# Physics-based bearing-fault signal for validation (Randall & Antoni, "Rolling element bearing
# diagnostics - A tutorial", MSSP 25 (2011) 485-520, section 2: the model behind envelope analysis)

BEARING_FAULT_CLASSES = ('healthy', 'outer_race', 'inner_race', 'ball')


def bearing_fault_signal(fault: str, n_samples: int, sample_rate_hz: float, shaft_hz: float, snr_db: float,
                         rng: np.random.Generator, bearing: BearingGeometry | None = None,
                         resonance_hz: float = 3000.0, damping_ratio: float = 0.05, slip: float = 0.015,
                         mesh_teeth: int = 23, mesh_to_fault_db: float = 6.0) -> np.ndarray:
    """One window of a bearing with a localised `fault` (or 'healthy'), in m/s^2.

    * Impacts at the defect frequency (BPFO, BPFI, or 2 x BSF for a ball striking both races) with
      random slip: each interval varies by `slip` (1-2 % in real bearings: the rolling elements
      slide), which makes the signal cyclostationary rather than periodic.
    * Each impact rings a structural resonance (`resonance_hz`, `damping_ratio`).
    * Amplitude modulation: an inner-race defect turns with the shaft through the load zone
      (period 1/shaft_hz); a ball's defect turns with the cage (period 1/FTF); an outer-race defect
      sits still in the load zone (no modulation).
    * A gear mesh at `mesh_teeth` x shaft (with a 1x sideband), `mesh_to_fault_db` above the fault
      component's RMS, and white Gaussian noise at `snr_db` = 10 log10(fault power / noise power).
      A healthy window has the mesh and the noise at the power they would have beside a fault.
    """
    if fault not in BEARING_FAULT_CLASSES:
        raise ValueError(f'unknown bearing fault {fault!r}; accepted: {", ".join(BEARING_FAULT_CLASSES)}')
    bearing = bearing or bearing_preset('6205')
    freqs = fault_frequencies(bearing, shaft_hz)
    fs = sample_rate_hz
    t = np.arange(n_samples) / fs
    # The fault component, at unit RMS (a healthy window is scaled as if it had one).
    rate = {'outer_race': freqs.bpfo_hz, 'inner_race': freqs.bpfi_hz, 'ball': 2.0 * freqs.bsf_hz,
            'healthy': freqs.bpfo_hz}[fault]
    intervals = (1.0 + slip * rng.standard_normal(int(n_samples / fs * rate) + 2)) / rate
    times = rng.uniform(0.0, 1.0 / rate) + np.concatenate(([0.0], np.cumsum(intervals)))
    times = times[times < n_samples / fs]
    if fault == 'inner_race':
        gain = 1.0 + 0.8 * np.cos(2.0 * math.pi * shaft_hz * times)
    elif fault == 'ball':
        gain = 1.0 + 0.8 * np.cos(2.0 * math.pi * freqs.ftf_hz * times)
    else:
        gain = np.ones_like(times)
    impulses = np.zeros(n_samples)
    np.add.at(impulses, (times * fs).astype(int), gain * (1.0 + 0.1 * rng.standard_normal(times.size)))
    wn = 2.0 * math.pi * resonance_hz
    length = min(int(8.0 / (damping_ratio * wn) * fs), n_samples)
    kt = np.arange(length) / fs
    kernel = np.exp(-damping_ratio * wn * kt) * np.sin(wn * math.sqrt(1.0 - damping_ratio ** 2) * kt)
    component = np.convolve(impulses, kernel)[:n_samples]
    component /= max(float(np.sqrt(np.mean(component ** 2))), 1e-12)
    x = component if fault != 'healthy' else np.zeros(n_samples)
    mesh = 10.0 ** (mesh_to_fault_db / 20.0) * math.sqrt(2.0)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    x = x + mesh * (np.sin(2.0 * math.pi * mesh_teeth * shaft_hz * t + phase)
                    + 0.3 * np.sin(2.0 * math.pi * (mesh_teeth + 1) * shaft_hz * t))
    return x + 10.0 ** (-snr_db / 20.0) * rng.standard_normal(n_samples)
