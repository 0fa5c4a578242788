"""Reproducible validation of the vibration analytics on signals with known answers.

* `roc_table`: detection and false-alarm rates per bearing fault class, window length and SNR on
  the physics-based signal model (`smartcell.twin.vibration_model.bearing_fault_signal`), with the
  area under the ROC curve and a reliability curve of the verdict confidence.
* `cycle_assessable_share`: the share of a joint's windows that can be assessed during the
  pick-and-place cycle, with the speed rule of old and with encoder order tracking.

Run: `.venv/bin/python bench/bench_vibration.py --roc 200 --assessable-share` (docs/sensors.md).
numpy only, no ROS (the signal model lives in twin/ but needs no simulator).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from smartcell.core.sensors.vibration import (AnalysisConfig, GearboxMonitor, MonitorConfig, bearing_preset,
                                              diagnose, extract_features)

FAULT_LINE_CLASS = {'outer_race': 'outer_race', 'inner_race': 'inner_race', 'ball': 'ball'}
DEFAULT_THRESHOLD = 4.0


@dataclass(frozen=True)
class RocRow:
    fault: str
    window_s: float
    snr_db: float
    detection: float        # share of fault windows called this fault (default threshold)
    false_alarm: float      # share of healthy windows called any bearing fault (same window, SNR)
    auc: float              # area under ROC: P(class score of a faulty window > max score of a healthy one)
    n: int


def _window_scores(fault: str, window_s: float, snr_db: float, n: int, rng: np.random.Generator,
                   sample_rate_hz: float, shaft_hz: float, config: AnalysisConfig):
    return [(f, c, e) for f, c, e, _ in _window_verdicts(fault, window_s, snr_db, n, rng, sample_rate_hz, shaft_hz,
                                                         config)]


def _auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Mann-Whitney estimate of the ROC area (ties count half)."""
    p, q = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(((p > q).sum() + 0.5 * (p == q).sum()) / max(p.size * q.size, 1))


def roc_table(snrs_db: Iterable[float], windows_s: Iterable[float], n: int, seed: int = 1,
              sample_rate_hz: float = 12800.0, shaft_hz: float = 15.0,
              config: AnalysisConfig = AnalysisConfig(envelope_band_hz='auto')
              ) -> tuple[list[RocRow], list[tuple[float, float, float, int]]]:
    """Rows per (fault, window, SNR), and the reliability curve: (bin low, bin high, share of
    verdicts in the bin that were right, count) over every verdict with a confidence > 0."""
    rng = np.random.default_rng(seed)
    rows, verdicts = [], []
    for window_s in windows_s:
        for snr_db in snrs_db:
            healthy = _window_scores('healthy', window_s, snr_db, n, rng, sample_rate_hz, shaft_hz, config)
            false_alarm = sum(f in FAULT_LINE_CLASS for f, _, _ in healthy) / n
            healthy_max = [max(e.get(c, 0.0) for c in FAULT_LINE_CLASS) for _, _, e in healthy]
            verdicts += [(c, f == 'healthy') for f, c, _ in healthy]
            for fault in FAULT_LINE_CLASS:
                faulty = _window_scores(fault, window_s, snr_db, n, rng, sample_rate_hz, shaft_hz, config)
                detection = sum(f == fault for f, _, _ in faulty) / n
                auc = _auc([e.get(fault, 0.0) for _, _, e in faulty], healthy_max)
                rows.append(RocRow(fault, window_s, snr_db, detection, false_alarm, auc, n))
                verdicts += [(c, f == fault) for f, c, _ in faulty]
    edges = np.linspace(0.0, 1.0, 6)
    curve = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = [ok for c, ok in verdicts if c > 0.0 and (lo < c <= hi)]
        curve.append((float(lo), float(hi), sum(inside) / len(inside) if inside else math.nan, len(inside)))
    return rows, curve


def roc_markdown(rows: Sequence[RocRow]) -> str:
    """One table: rows = fault class and window, columns = SNR (detection / false alarm / AUC)."""
    snrs = sorted({r.snr_db for r in rows})
    lines = ['| fault | window s | ' + ' | '.join(f'SNR {s:g} dB' for s in snrs) + ' |',
             '|---|---|' + '---|' * len(snrs)]
    for fault in FAULT_LINE_CLASS:
        for window_s in sorted({r.window_s for r in rows}):
            cells = []
            for s in snrs:
                r = next(r for r in rows if r.fault == fault and r.window_s == window_s and r.snr_db == s)
                cells.append(f'{r.detection:.0%} / {r.false_alarm:.0%} / {r.auc:.2f}')
            lines.append(f'| {fault} | {window_s:g} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def choose_window(rows: Sequence[RocRow], snr_db: float, min_detection: float = 0.9,
                  max_false_alarm: float = 0.01) -> float | None:
    """Shortest window whose every fault class reaches `min_detection` at `snr_db` with at most
    `max_false_alarm` false alarms."""
    for window_s in sorted({r.window_s for r in rows}):
        at = [r for r in rows if r.window_s == window_s and r.snr_db == snr_db]
        if at and all(r.detection >= min_detection and r.false_alarm <= max_false_alarm for r in at):
            return window_s
    return None


# ---------------------------------------------------------------------------------------------
# Share of windows assessable during the cell's cycle

UR5E_SPEED_LIMIT_RADPS = math.pi        # every UR5e joint: 180 deg/s
PEAK_TO_MEAN = 1.5                       # trapezoid with thirds, as the arm's segment planner assumes


def cycle_positions(configurations: Sequence[np.ndarray], sample_rate_hz: float, speed_fraction: float = 0.5,
                    dwell_s: float = 0.5, cycles: int = 5) -> np.ndarray:
    """Joint positions (rad, samples x joints) moving through `configurations` in a loop: each
    segment timed like `core.robot.motions.segment_plan` (peak speed = speed_fraction x limit,
    trapezoid: a third accelerating, a third cruising, a third braking), `dwell_s` at each stop."""
    path = [np.asarray(q, float) for q in configurations] * cycles + [np.asarray(configurations[0], float)]
    out = []
    for start, target in zip(path[:-1], path[1:]):
        distance = np.abs(target - start)
        duration = max(0.3, 1.02 * float(np.max(PEAK_TO_MEAN * distance
                                                / (UR5E_SPEED_LIMIT_RADPS * speed_fraction))))
        s = np.arange(int(duration * sample_rate_hz)) / (duration * sample_rate_hz)   # 0..1
        # trapezoid profile: position fraction of a 1/3-1/3-1/3 velocity trapezoid (peak 1.5 x mean)
        frac = np.where(s < 1 / 3, 2.25 * s ** 2,
                        np.where(s < 2 / 3, 0.25 + 1.5 * (s - 1 / 3), 1.0 - 2.25 * (1.0 - s) ** 2))
        out.append(start + frac[:, None] * (target - start))
        out.append(np.repeat(target[None, :], int(dwell_s * sample_rate_hz), axis=0))
    return np.concatenate(out)


def cycle_assessable_share(positions_rad: np.ndarray, sample_rate_hz: float, window_s: float,
                           gear_ratio: float = 101.0, min_shaft_hz: float = 2.0,
                           max_speed_variation: float = 2.0) -> list[tuple[float, float]]:
    """Per joint: (share assessable with the speed rule, share with encoder order tracking).

    Speed rule (before): the shaft at >= min_shaft_hz all window long, (max - min)/mean <=
    max_speed_variation. Order tracking (after): the monitor's angle rule (MonitorConfig.min_turns
    above min_shaft_hz over at least min_moving_fraction of the window). Runs the real
    GearboxMonitor on a quiet signal, counting the windows that are not 'idle'."""
    dt = 1.0 / sample_rate_hz
    n = int(round(window_s * sample_rate_hz))
    out = []
    for j in range(positions_rad.shape[1]):
        q = positions_rad[:, j]
        shaft_turns = q * gear_ratio / (2.0 * math.pi)
        speed_hz = np.abs(np.gradient(shaft_turns, dt))
        windows = positions_rad.shape[0] // n
        before = 0
        for k in range(windows):
            v = speed_hz[k * n:(k + 1) * n]
            mean = float(v.mean())
            if v.min() >= min_shaft_hz and (v.max() - v.min()) <= max_speed_variation * mean:
                before += 1
        monitor = GearboxMonitor(MonitorConfig(sample_rate_hz=sample_rate_hz, window_s=window_s,
                                               bearing=bearing_preset('6205'), min_shaft_hz=min_shaft_hz,
                                               baseline_windows=10 ** 6))
        noise = 0.05 * np.random.default_rng(j).standard_normal(windows * n)
        states = []
        for k in range(windows):
            sl = slice(k * n, (k + 1) * n)
            states += [a.state for a in monitor.add_samples(noise[sl], float(speed_hz[sl].mean()), k * window_s,
                                                            shaft_turns[sl])]
        after = sum(s != 'idle' for s in states)
        out.append((before / max(windows, 1), after / max(windows, 1)))
    return out


# ---------------------------------------------------------------------------------------------
# Calibration of the verdict confidence: reliability curve, ECE, isotonic map


@dataclass(frozen=True)
class LabelledVerdict:
    truth: str               # the class the window was generated with
    fault: str               # the verdict
    raw_confidence: float    # heuristic confidence (before calibration)
    confidence: float        # as reported by `diagnose` (calibrated where a map exists)
    window_s: float
    snr_db: float

    @property
    def right(self) -> bool:
        return self.fault == self.truth


def labelled_verdicts(snrs_db: Iterable[float], windows_s: Iterable[float], n: int, seed: int,
                      sample_rate_hz: float = 12800.0, shaft_hz: float = 15.0,
                      config: AnalysisConfig = AnalysisConfig(envelope_band_hz='auto')) -> list[LabelledVerdict]:
    """Baseline-free verdicts on `n` windows of each class (healthy, outer race, inner race, ball) for
    every window length and SNR of the ROC grid: equal class shares, the population the calibration
    maps are fitted on and stand for."""
    rng = np.random.default_rng(seed)
    out = []
    for window_s in windows_s:
        for snr_db in snrs_db:
            for truth in ('healthy',) + tuple(FAULT_LINE_CLASS):
                for fault, _, _, d in _window_verdicts(truth, window_s, snr_db, n, rng, sample_rate_hz, shaft_hz,
                                                       config):
                    out.append(LabelledVerdict(truth, fault, d.raw_confidence, d.confidence, window_s, snr_db))
    return out


def _window_verdicts(fault: str, window_s: float, snr_db: float, n: int, rng: np.random.Generator,
                     sample_rate_hz: float, shaft_hz: float, config: AnalysisConfig):
    from smartcell.twin.vibration_model import bearing_fault_signal
    bearing = bearing_preset('6205')
    out = []
    for _ in range(n):
        x = bearing_fault_signal(fault, int(round(window_s * sample_rate_hz)), sample_rate_hz, shaft_hz, snr_db, rng,
                                 bearing)
        d = diagnose(extract_features(x, sample_rate_hz, shaft_hz, bearing, config))
        out.append((d.fault, d.confidence, dict(d.evidence), d))
    return out


def isotonic_fit(x: Sequence[float], y: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Non-decreasing least-squares fit of 0/1 outcomes `y` on scores `x` (pool adjacent violators).

    Returns knots (mean score of each pooled block, share right in it) for linear interpolation.
    A block of n verdicts with k right is given (k + 1/2) / (n + 1), never exactly 0 or 1: a finite
    set cannot show certainty (the ends are then made monotone again).
    """
    order = np.argsort(np.asarray(x, float), kind='stable')
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    blocks: list[list[float]] = []          # [sum x, sum y, count]
    for xi, yi in zip(xs, ys):
        blocks.append([xi, yi, 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            sx, sy, c = blocks.pop()
            blocks[-1][0] += sx
            blocks[-1][1] += sy
            blocks[-1][2] += c
    knots_x = [b[0] / b[2] for b in blocks]
    knots_y = np.maximum.accumulate([(b[1] + 0.5) / (b[2] + 1.0) for b in blocks])
    return tuple(float(v) for v in knots_x), tuple(float(v) for v in knots_y)


def fit_calibration(verdicts: Sequence[LabelledVerdict]) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """One isotonic map per calibration group (healthy verdicts; named bearing faults) from raw
    confidence to the share of verdicts right."""
    from smartcell.core.sensors.vibration import calibration_group
    maps = {}
    for group in ('healthy', 'bearing_fault'):
        mine = [v for v in verdicts if calibration_group(v.fault) == group]
        if mine:
            maps[group] = isotonic_fit([v.raw_confidence for v in mine], [float(v.right) for v in mine])
    return maps


def apply_calibration(verdicts: Sequence[LabelledVerdict],
                      maps: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]) -> list[float]:
    """The confidence each verdict would get with `maps` (raw where no map applies)."""
    from smartcell.core.sensors.vibration import Diagnosis, calibrate_confidence
    return [calibrate_confidence(Diagnosis(v.fault, v.raw_confidence), maps).confidence for v in verdicts]


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    mean_confidence: float   # NaN when empty
    accuracy: float          # share of verdicts in the bin that were right, NaN when empty
    count: int


def reliability_curve(confidence: Sequence[float], right: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width confidence bins [0, 0.1), ..., [0.9, 1.0] with mean confidence and accuracy."""
    c, ok = np.asarray(confidence, float), np.asarray(right, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, c, side='right') - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        inside = index == b
        k = int(inside.sum())
        out.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), float(c[inside].mean()) if k else math.nan,
                                  float(ok[inside].mean()) if k else math.nan, k))
    return out


def expected_calibration_error(curve: Sequence[ReliabilityBin]) -> float:
    """ECE = sum over bins of (share of verdicts in the bin) x |accuracy - mean confidence|."""
    total = sum(b.count for b in curve)
    return sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in curve if b.count) if total else math.nan


def reliability_markdown(before: Sequence[ReliabilityBin], after: Sequence[ReliabilityBin]) -> str:
    lines = ['| confidence bin | before: mean confidence | before: accuracy | before: n '
             '| after: mean confidence | after: accuracy | after: n |', '|---|---|---|---|---|---|---|']

    def cells(b: ReliabilityBin) -> str:
        return (f'{b.mean_confidence:.2f} | {b.accuracy:.0%} | {b.count}' if b.count else '- | - | 0')
    for b, a in zip(before, after):
        lines.append(f'| {b.low:.1f}–{b.high:.1f} | {cells(b)} | {cells(a)} |')
    return '\n'.join(lines)


def calibration_module(maps: dict[str, tuple[tuple[float, ...], tuple[float, ...]]], command: str,
                       description: str) -> str:
    """Source of smartcell/core/sensors/vibration_calibration.py holding `maps`."""
    def numbers(values: Sequence[float]) -> str:
        text = [f'{v:.4f}' for v in values]
        rows = [', '.join(text[i:i + 10]) for i in range(0, len(text), 10)]
        return '(\n            ' + ',\n            '.join(rows) + ',)'
    body = ',\n'.join(f'    {group!r}: (\n        {numbers(xs)},\n        {numbers(ys)})'
                      for group, (xs, ys) in maps.items())
    return (f'"""Calibration maps of the baseline-free verdict confidence (generated: do not edit).\n\n'
            f'Regenerate with\n\n    {command}\n\n{description}\n'
            'Per group: (raw confidence knots, share of verdicts right), interpolated linearly.\n"""\n'
            'from __future__ import annotations\n\n'
            'CONFIDENCE_CALIBRATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {\n'
            f'{body},\n}}\n')
