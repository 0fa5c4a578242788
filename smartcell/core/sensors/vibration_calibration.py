"""Calibration maps of the baseline-free verdict confidence (generated: do not edit).

Regenerate with

    .venv/bin/python bench/bench_vibration.py --calibrate 40 --write-calibration --skip-features --skip-node

Fit: 3840 baseline-free verdicts on smartcell.twin.vibration_model.
bearing_fault_signal (seed 101); held-out ECE (seed 202, 3840 verdicts): 0.154 before, 0.009 after.
Per group: (raw confidence knots, share of verdicts right), interpolated linearly.
"""
from __future__ import annotations

CONFIDENCE_CALIBRATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    'healthy': (
        (
            0.2302, 0.4217, 0.4681, 0.4880, 0.5006, 0.5099, 0.5198, 0.5369, 0.5563, 0.5754,
            0.5967, 0.6155, 0.6265, 0.6552, 0.7118,),
        (
            0.0015, 0.0538, 0.1190, 0.1786, 0.2500, 0.3750, 0.3824, 0.4135, 0.4620, 0.5531,
            0.6304, 0.6903, 0.7206, 0.7409, 0.7412,)),
    'bearing_fault': (
        (
            0.6507,),
        (
            0.9997,)),
}
