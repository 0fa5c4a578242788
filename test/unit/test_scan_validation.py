"""Scan validation: every malformed scan is a named reason, never an exception, never "valid and empty"."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcell.core.sensors.people_tracking import PeopleTracker, Pose2D, TrackerConfig
from smartcell.core.sensors.scan_validation import (MAX_BEAMS, RawScan, RepeatedScan, ScanFault, ScanGate,
                                                    ScanLayout, ScanLimits, ScanRejected, ValidScan,
                                                    check_publishers, validate_scan)

from scan_helpers import ANGLE_MIN, BEAMS, INCREMENT, legs_ranges

LIMITS = ScanLimits(frame_id='scanner_link')


def scan(stamp_s: float = 10.0, ranges=None, **fields) -> RawScan:
    """A valid scan of a person 0.5 m in front of the scanner, with `fields` replaced."""
    ns = int(round(stamp_s * 1e9))
    base = dict(stamp_sec=ns // 1_000_000_000, stamp_nanosec=ns % 1_000_000_000, frame_id='scanner_link',
                angle_min_rad=ANGLE_MIN, angle_max_rad=ANGLE_MIN + (BEAMS - 1) * INCREMENT,
                angle_increment_rad=INCREMENT, time_increment_s=0.0, scan_time_s=1 / 30, range_min_m=0.05,
                range_max_m=9.0, ranges_m=legs_ranges(0.5, 0.0) if ranges is None else np.asarray(ranges))
    base.update(fields)
    return RawScan(**base)


def people_in(valid: ValidScan) -> int:
    tracker = PeopleTracker(TrackerConfig(), Pose2D(0.0, 0.0, 0.0), valid.layout.geometry())
    return len(tracker.update(valid.ranges_m, valid.stamp_s))


def test_a_valid_scan_of_a_person_passes_and_the_tracker_finds_them():
    result = validate_scan(scan(), LIMITS)
    assert isinstance(result, ValidScan)
    assert result.layout == ScanLayout(ANGLE_MIN, INCREMENT, BEAMS, 0.05, 9.0)
    assert result.returns > 0 and result.invalid_beams == 0
    assert people_in(result) == 1


def test_no_return_is_valid_nothing_there():
    """+inf (REP 117) and ranges beyond range_max are a real scanner's "nothing in range"."""
    ranges = np.full(BEAMS, np.inf)
    ranges[:100] = 25.0
    result = validate_scan(scan(ranges=ranges), LIMITS)
    assert isinstance(result, ValidScan) and result.returns == 0
    assert people_in(result) == 0


NAN_RANGES = np.full(BEAMS, np.nan)
ONE_NAN_ON_THE_PERSON = legs_ranges(0.5, 0.0).copy()
ONE_NAN_ON_THE_PERSON[np.flatnonzero(np.isfinite(ONE_NAN_ON_THE_PERSON))[3]] = np.nan
MINUS_INF = legs_ranges(0.5, 0.0).copy()
MINUS_INF[270] = -np.inf


@pytest.mark.parametrize('fields, fault', [
    ({'ranges': NAN_RANGES}, ScanFault.INVALID_BEAMS),
    ({'ranges': -legs_ranges(0.5, 0.0)}, ScanFault.INVALID_BEAMS),
    ({'ranges': np.zeros(BEAMS)}, ScanFault.INVALID_BEAMS),
    ({'ranges': ONE_NAN_ON_THE_PERSON}, ScanFault.INVALID_BEAMS),
    ({'ranges': MINUS_INF}, ScanFault.INVALID_BEAMS),
    ({'ranges': np.array([], dtype=np.float32)}, ScanFault.NO_BEAMS),
    ({'ranges': legs_ranges(0.5, 0.0)[:300]}, ScanFault.BEAM_COUNT_MISMATCH),
    ({'ranges': np.full(MAX_BEAMS + 1, np.inf)}, ScanFault.TOO_MANY_BEAMS),
    ({'range_min_m': 9.5}, ScanFault.BAD_RANGE_LIMITS),
    ({'range_min_m': -0.1}, ScanFault.BAD_RANGE_LIMITS),
    ({'range_max_m': math.inf}, ScanFault.BAD_RANGE_LIMITS),
    ({'range_min_m': math.nan}, ScanFault.BAD_RANGE_LIMITS),
    ({'angle_increment_rad': math.nan}, ScanFault.BAD_INCREMENT),
    ({'angle_increment_rad': 0.0}, ScanFault.BAD_INCREMENT),
    ({'angle_increment_rad': -INCREMENT}, ScanFault.BAD_INCREMENT),
    ({'angle_increment_rad': math.inf}, ScanFault.BAD_INCREMENT),
    ({'angle_min_rad': math.nan}, ScanFault.BAD_ANGLES),
    ({'angle_max_rad': ANGLE_MIN - 1.0}, ScanFault.BAD_ANGLES),
    ({'angle_max_rad': ANGLE_MIN + 7.0}, ScanFault.BAD_ANGLES),
    ({'frame_id': 'laser_wrong'}, ScanFault.WRONG_FRAME),
    ({'stamp_nanosec': 1_000_000_000}, ScanFault.BAD_STAMP),
    ({'stamp_sec': -1}, ScanFault.BAD_STAMP),
    ({'scan_time_s': math.nan}, ScanFault.BAD_TIME_FIELDS),
    ({'scan_time_s': -0.03}, ScanFault.BAD_TIME_FIELDS),
    ({'time_increment_s': 0.01}, ScanFault.BAD_TIME_FIELDS),     # 541 beams x 10 ms in a 33 ms scan
    ({'intensities_count': 7}, ScanFault.INTENSITIES_MISMATCH),
])
def test_each_malformed_scan_is_rejected_with_its_reason(fields, fault):
    result = validate_scan(scan(**fields), LIMITS)
    assert isinstance(result, ScanRejected), result
    assert result.fault is fault
    assert result.reason.startswith(fault.value + ': ') and len(result.detail) > 10


def test_an_unknown_beam_outside_the_protective_sector_is_tolerated_only_when_configured():
    ranges = legs_ranges(0.5, 0.0).copy()
    ranges[5] = np.nan                                         # -132.5 deg: behind the scanner's front
    sector = ScanLimits(protective_sector_rad=(-math.pi / 2, math.pi / 2), max_invalid_beams=1)
    tolerated = validate_scan(scan(ranges=ranges), sector)
    assert isinstance(tolerated, ValidScan) and tolerated.invalid_beams == 1
    assert np.isnan(tolerated.ranges_m[5]) and people_in(tolerated) == 1
    assert validate_scan(scan(ranges=ranges), replace(sector, max_invalid_beams=0)).fault is ScanFault.INVALID_BEAMS
    ranges[270] = np.nan                                       # straight ahead: inside the sector
    assert validate_scan(scan(ranges=ranges), sector).fault is ScanFault.INVALID_BEAMS


def test_stamps_far_from_the_clock_are_rejected():
    assert isinstance(validate_scan(scan(100.0), LIMITS, now_s=100.2), ValidScan)
    assert validate_scan(scan(100.0), LIMITS, now_s=99.0).fault is ScanFault.STAMP_IN_FUTURE
    assert validate_scan(scan(100.0), LIMITS, now_s=101.0).fault is ScanFault.STAMP_TOO_OLD
    # No clock (lockstep simulation runs on the tick stamps): only the sequence is judged.
    assert isinstance(validate_scan(scan(100.0), LIMITS, now_s=None), ValidScan)


def test_the_layout_is_fixed_by_the_first_valid_scan_and_a_change_is_rejected():
    gate = ScanGate(LIMITS)
    assert validate_scan(scan(ranges=NAN_RANGES), LIMITS).fault is ScanFault.INVALID_BEAMS
    assert isinstance(gate.check(scan(1.0, range_max_m=20.0)), ValidScan)      # first valid: fixes the layout
    stray = gate.check(scan(1.03, range_min_m=0.051, range_max_m=20.0))       # 1 mm off
    assert isinstance(stray, ScanRejected) and stray.fault is ScanFault.LAYOUT_CHANGED
    assert isinstance(gate.check(scan(1.06, range_max_m=20.0)), ValidScan)
    configured = ScanGate(LIMITS, ScanLayout(ANGLE_MIN, INCREMENT, BEAMS, 0.05, 9.0))
    assert configured.check(scan(1.0, range_max_m=20.0)).fault is ScanFault.LAYOUT_CHANGED
    assert configured.rejected == {ScanFault.LAYOUT_CHANGED: 1}


def test_a_stamp_out_of_sequence_never_poisons_the_next_good_scan():
    gate = ScanGate(LIMITS)
    assert isinstance(gate.check(scan(10.0)), ValidScan)
    assert gate.check(scan(110.0)).fault is ScanFault.STAMP_JUMP             # +100 s, once
    assert isinstance(gate.check(scan(10.033)), ValidScan)                    # the real scanner carries on
    assert gate.check(scan(9.0)).fault is ScanFault.STAMP_BACKWARDS
    assert isinstance(gate.check(scan(10.066)), ValidScan)


def test_a_repeat_is_recognised_and_a_reused_stamp_with_other_ranges_is_rejected():
    gate = ScanGate(LIMITS)
    assert isinstance(gate.check(scan(5.0)), ValidScan)
    assert gate.check(scan(5.0)) == RepeatedScan(5_000_000_000)
    reused = gate.check(scan(5.0, ranges=np.full(BEAMS, np.inf)))            # "nobody" under the same stamp
    assert isinstance(reused, ScanRejected) and reused.fault is ScanFault.STAMP_REUSED


def test_a_new_time_base_is_accepted_after_consistent_scans_and_says_rearmed():
    gate = ScanGate(LIMITS)                                   # rearm_scans = 3
    for k in range(5):
        assert isinstance(gate.check(scan(500.0 + k / 30)), ValidScan)
    # The twin restarts: sim time from 0 again.
    assert gate.check(scan(0.0)).fault is ScanFault.STAMP_BACKWARDS
    assert gate.check(scan(1 / 30)).fault is ScanFault.STAMP_BACKWARDS
    rearmed = gate.check(scan(2 / 30))
    assert isinstance(rearmed, ValidScan) and rearmed.rearmed
    following = gate.check(scan(3 / 30))
    assert isinstance(following, ValidScan) and not following.rearmed


@pytest.mark.parametrize('publishers, expected, stray', [
    ([], '', None),
    ([('/', 'twin')], '', None),
    ([('/', 'twin')], 'twin', None),
    ([('/cell1', 'twin')], '/cell1/twin', None),
    ([('/', 'twin'), ('/', 'spoofer')], '', '/spoofer'),
    ([('/', 'twin'), ('/', 'spoofer')], 'twin', '/spoofer'),
    ([('/', 'spoofer')], 'twin', '/spoofer'),
    ([('/other', 'twin')], '/cell1/twin', '/other/twin'),
])
def test_only_one_publisher_and_the_expected_one_may_publish_scan(publishers, expected, stray):
    reason = check_publishers(publishers, expected)
    if stray is None:
        assert reason is None
    else:
        assert reason is not None and stray in reason


# -- property-based: generated malformations of a scan with a person 0.2-0.9 m away ------------------
def _corrupt_beams(draw, ranges: np.ndarray) -> np.ndarray:
    bad = draw(st.sampled_from(['nan', '-inf', 'negative', 'zero', 'below_min']))
    person = np.flatnonzero(np.isfinite(ranges))
    indices = draw(st.lists(st.sampled_from(person.tolist()), min_size=1, max_size=len(person)))
    value = {'nan': np.nan, '-inf': -np.inf, 'zero': 0.0,
             'negative': -draw(st.floats(1e-6, 1e6)), 'below_min': draw(st.floats(0.0, 0.0499))}[bad]
    out = ranges.copy()
    out[indices] = value
    return out


@st.composite
def malformed_scans(draw) -> tuple[RawScan, set[ScanFault]]:
    """A scan of a person 0.2-0.9 m away, broken in one of the ways a driver or a stray breaks it."""
    distance = draw(st.floats(0.2, 0.9))
    good = scan(10.0, ranges=legs_ranges(distance, draw(st.floats(-0.2, 0.2))))
    kind = draw(st.sampled_from(['beams', 'all_bad', 'length', 'range_limits', 'increment', 'angles', 'frame',
                                 'stamp', 'time_fields', 'intensities']))
    non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
    if kind == 'beams':
        return replace(good, ranges_m=_corrupt_beams(draw, good.ranges_m)), {ScanFault.INVALID_BEAMS}
    if kind == 'all_bad':
        value = draw(st.sampled_from([math.nan, -math.inf, 0.0, -1.0]))
        return replace(good, ranges_m=np.full(BEAMS, value)), {ScanFault.INVALID_BEAMS}
    if kind == 'length':
        n = draw(st.one_of(st.just(0), st.integers(1, BEAMS - 2), st.integers(BEAMS + 2, 3 * BEAMS)))
        ranges = np.resize(good.ranges_m, n)
        return replace(good, ranges_m=ranges), {ScanFault.NO_BEAMS, ScanFault.BEAM_COUNT_MISMATCH}
    if kind == 'range_limits':
        lo = draw(st.one_of(non_finite, st.floats(-100, 100)))
        hi = draw(st.one_of(non_finite, st.floats(-100, 100)))
        if math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi:
            lo, hi = hi, lo if lo != hi else hi                # make it wrong: min >= max
        return replace(good, range_min_m=lo, range_max_m=hi), {ScanFault.BAD_RANGE_LIMITS}
    if kind == 'increment':
        inc = draw(st.one_of(non_finite, st.floats(-10, 0)))
        return replace(good, angle_increment_rad=inc), {ScanFault.BAD_INCREMENT}
    if kind == 'angles':
        field = draw(st.sampled_from(['angle_min_rad', 'angle_max_rad']))
        return replace(good, **{field: draw(non_finite)}), {ScanFault.BAD_ANGLES}
    if kind == 'frame':
        frame = draw(st.text(max_size=20).filter(lambda f: f != 'scanner_link'))
        return replace(good, frame_id=frame), {ScanFault.WRONG_FRAME}
    if kind == 'stamp':
        sec, nanosec = draw(st.one_of(
            st.tuples(st.integers(-2**31, -1), st.integers(0, 999_999_999)),
            st.tuples(st.integers(0, 2**31 - 1), st.integers(1_000_000_000, 2**32 - 1))))
        return replace(good, stamp_sec=sec, stamp_nanosec=nanosec), {ScanFault.BAD_STAMP}
    if kind == 'time_fields':
        field = draw(st.sampled_from(['scan_time_s', 'time_increment_s']))
        value = draw(non_finite) if field == 'time_increment_s' else draw(st.one_of(non_finite, st.floats(-10, -1e-9)))
        return replace(good, **{field: value}), {ScanFault.BAD_TIME_FIELDS}
    count = draw(st.integers(1, 3 * BEAMS).filter(lambda n: n != BEAMS))
    return replace(good, intensities_count=count), {ScanFault.INTENSITIES_MISMATCH}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_scans())
def test_generated_malformed_scans_are_rejected_with_a_named_reason(case):
    bad, faults = case
    result = validate_scan(bad, LIMITS)
    assert isinstance(result, ScanRejected), f'accepted a malformed scan: {result}'
    assert result.fault in faults, result.reason


@settings(max_examples=200, deadline=None)
@given(malformed_scans())
def test_a_malformed_scan_never_disturbs_the_gate(case):
    """Between good scans, a malformed one is rejected and the next good scan sees the person."""
    bad, faults = case
    gate = ScanGate(LIMITS)
    assert isinstance(gate.check(scan(9.9)), ValidScan)
    if faults != {ScanFault.BAD_STAMP}:
        bad = replace(bad, stamp_sec=9, stamp_nanosec=950_000_000)          # between the two good scans
    assert isinstance(gate.check(bad), ScanRejected)
    after = gate.check(scan(10.0))
    assert isinstance(after, ValidScan) and people_in(after) == 1


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=400, deadline=None)
@given(st.builds(RawScan, stamp_sec=st.integers(-2**31, 2**31 - 1), stamp_nanosec=st.integers(0, 2**32 - 1),
                 frame_id=st.sampled_from(['scanner_link', '', 'x']), angle_min_rad=finite_or_not,
                 angle_max_rad=finite_or_not, angle_increment_rad=finite_or_not, time_increment_s=finite_or_not,
                 scan_time_s=finite_or_not, range_min_m=finite_or_not, range_max_m=finite_or_not,
                 ranges_m=st.lists(finite_or_not, max_size=60).map(lambda v: np.array(v, dtype=np.float32)),
                 intensities_count=st.integers(0, 100)))
def test_any_field_values_give_a_valid_scan_or_a_reason_never_an_exception(raw):
    result = validate_scan(raw, LIMITS, now_s=float(raw.stamp_sec))
    assert isinstance(result, (ValidScan, ScanRejected))
    if isinstance(result, ValidScan):
        # Whatever was accepted is readable: geometry finite and consistent, no unknown beam in it.
        assert raw.frame_id == 'scanner_link'
        assert 0 <= raw.range_min_m < raw.range_max_m < math.inf and raw.angle_increment_rad > 0
        assert len(raw.ranges_m) > 0
        assert not np.any(np.isnan(result.ranges_m))
        assert np.all(result.ranges_m >= raw.range_min_m)
