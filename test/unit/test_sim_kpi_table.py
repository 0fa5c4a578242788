"""The KPI table `smartcell sim` prints: a job with no unit completed says so (no crash, no NaN)."""
from smartcell.tools.sim import format_kpis

BASE = dict(sim_time_s=300.0, wall_time_s=30.0, real_time_factor=10.0, min_person_robot_distance_m=0.5,
            min_separation_m=0.4, reduced_speed_time_s=1.0, safety_stop_time_s=2.0, protective_stops=1,
            contacts=0)
JOB = dict(units_completed=0, robot_utilisation=0.1, human_utilisation=0.2, robot_idle_s=100.0, human_idle_s=50.0,
           replans=3, reallocated_steps=1)


def test_a_job_without_units_prints_none_instead_of_failing():
    table = format_kpis({**BASE, **JOB})            # the cell sends no cycle-time figure (null, reason)
    assert 'none: no unit completed' in table and 'nan' not in table.lower()


def test_a_job_with_units_prints_the_cycle_time():
    table = format_kpis({**BASE, **JOB, 'units_completed': 2, 'cycle_time_mean_s': 61.25, 'cycle_time_std_s': 1.5})
    assert '61.2 +- 1.5 s' in table or '61.3 +- 1.5 s' in table


def test_time_per_unit_is_held_against_the_plan():
    table = format_kpis({**BASE, **JOB, 'units_completed': 3, 'time_per_unit_s': 110.3,
                         'planned_time_per_unit_s': 100.7})
    assert '110.3 / 100.7 s = 1.10x' in table
    assert 'none / 100.7 s' in format_kpis({**BASE, **JOB, 'time_per_unit_s': None, 'planned_time_per_unit_s': 100.7})
