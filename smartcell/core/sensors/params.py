"""Parameter specs of the smart-sensor nodes: vibration_sensor, energy_meter, wearable.

Importable without rclpy (topology and config validation read them). Units are in the names.
"""
from __future__ import annotations

from smartcell.core.params import NodeParams, ParamSpec as P
from smartcell.core.sensors.vibration import BEARING_PRESETS

UR5E_JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint',
               'wrist_1_joint', 'wrist_2_joint', 'wrist_3_joint']
VIBRATION_FAULTS = ('none', 'imbalance', 'misalignment', 'outer_race', 'inner_race', 'looseness')

VIBRATION_SENSOR = NodeParams('vibration_sensor', (
    P('source', 'sim', 'sim: signal generated from joint_states speed/effort; imu: one sensor_msgs/Imu '
      'topic per joint (linear acceleration x); batch: one std_msgs/Float64MultiArray topic per joint',
      choices=('sim', 'imu', 'batch')),
    P('raw_topic_prefix', 'vibration/raw', 'imu/batch sources: topic of a joint = <prefix>/<joint name>'),
    P('joint_names', list(UR5E_JOINTS), 'monitored joints (gearboxes), in output row order'),
    # Defaults describe the simulated cell (as the other nodes' do); hardware: 25600 Hz, 1 s.
    P('sample_rate_hz', 12800.0, 'accelerometer sample rate in Hz', min=500.0, max=200000.0),
    # 1 s: the ROC table (docs/sensors.md) detects every class at -10 dB (0.5 s: 37-90 %), and with order
    # tracking as many or more windows of the pick_place cycle are assessable than with 0.5 s.
    P('window_s', 1.0, 'analysis window in s (frequency resolution = 1 / window_s Hz)', min=0.05, max=10.0),
    P('gear_ratio', 101.0, 'monitored (motor-side) shaft turns per joint turn', min=1.0, max=1000.0),
    P('bearing', '6205', 'bearing preset of the monitored shaft', choices=tuple(sorted(BEARING_PRESETS))),
    P('envelope_band_hz', [0.0, 0.0], 'envelope band-pass [low, high] in Hz; [0, 0] = automatic: the fast '
      'kurtogram\'s most impulsive band when significant, else 0.08-0.40 x sample rate'),
    P('min_shaft_hz', 2.0, 'windows where the shaft is slower at any time are not assessed (no information), Hz',
      min=0.1, max=500.0),
    P('max_speed_variation', 2.0, 'windows whose shaft speed varies more ((max - min) / mean) are not assessed',
      min=0.0, max=10.0),
    P('order_tracking', True, 'resample varying-speed windows to equal shaft-angle steps before analysis'),
    P('baseline_windows', 20, 'healthy windows learnt per joint before health is assessed', min=3, max=10000),
    P('baseline_file', '', 'baseline JSON written by `smartcell analyze-vibration REC --learn-baseline FILE '
      '--joint NAME` for every monitored joint: health is rated from the first window (sample rate, window, '
      'bearing and features must match, else the node refuses to start; its envelope band is used); '
      'empty = learn online on the first baseline_windows windows'),
    P('health_warn', 3.0, 'health index (about 1 = baseline) for WARN', min=1.0, max=1000.0),
    P('health_alarm', 6.0, 'health index for ERROR', min=1.0, max=1000.0),
    P('health_clear_ratio', 0.8, 'hysteresis: a WARN/ERROR from the health index clears only below this x its '
      'threshold', min=0.1, max=1.0),
    P('iso_zone_boundaries_mm_s', [0.71, 1.8, 4.5], 'ISO 20816-1 zone boundaries A/B, B/C, C/D of the velocity '
      'RMS 10-1000 Hz in mm/s (default class I, small machines); zone C -> WARN, D -> ERROR'),
    P('rms_alarm_mps2', 50.0, 'absolute RMS acceleration for ERROR, whatever the baseline, m/s^2',
      min=0.1, max=10000.0),
    P('rul_warn_s', 86400.0, 'predicted remaining useful life below this -> WARN, s', min=0.0, max=1e9),
    P('trend_windows', 30, 'latest assessed windows used for the RUL trend', min=5, max=10000),
    P('stale_timeout_s', 2.0, 'no input for this long -> STALE on /diagnostics, s', min=0.05, max=600.0),
    P('fault', 'none', 'sim: injected fault', choices=VIBRATION_FAULTS),
    P('fault_joint', '', 'sim: joint with the injected fault; empty = every joint'),
    P('fault_onset_s', 0.0, 'sim: fault starts this long after the first joint state, s', min=0.0, max=1e9),
    P('fault_initial_severity', 0.01, 'sim: severity at onset (1 = severe)', min=0.0, max=1.0),
    P('fault_growth_per_s', 0.001, 'sim: exponential growth rate of the severity, 1/s', min=0.0, max=100.0),
    P('seed', 1, 'sim: random seed of the signal noise', min=0, max=2**31 - 1),
))

ENERGY_METER = NodeParams('energy_meter', (
    P('source', 'joint_states', 'joint_states: power from joint torques x speeds + loss model + idle; '
      'power_meter: measured cell power on power_topic', choices=('joint_states', 'power_meter')),
    P('power_topic', 'energy/power_w', 'power_meter source: std_msgs/Float64 cell power in W'),
    P('idle_power_w', 90.0, 'controller / cabinet power with the arm standing, W', min=0.0, max=100000.0),
    P('copper_loss_w_per_nm2', 0.0005, 'drive copper loss per (joint torque)^2, W/(N m)^2', min=0.0, max=10.0),
    P('friction_loss_w_per_rad_s', 2.0, 'friction + iron loss per joint speed, W/(rad/s)', min=0.0, max=1000.0),
    P('regen_efficiency', 0.0, 'share of braking power returned to the supply (0 = brake resistor)',
      min=0.0, max=1.0),
    P('grid_co2e_g_per_kwh', 350.0, 'grid emission factor, g CO2e per kWh', min=0.0, max=2000.0),
    P('report_rate_hz', 1.0, 'energy/report and /diagnostics rate in Hz (node clock)', min=0.1, max=50.0),
    P('max_gap_s', 1.0, 'longer gaps between power samples are not integrated (counted unmetered), s',
      min=0.01, max=3600.0),
    P('stale_timeout_s', 2.0, 'no power input for this long -> STALE, s', min=0.05, max=600.0),
    P('environment', 'sim', 'sim: seeded simulated environment; topics: environment/* topics; off',
      choices=('sim', 'topics', 'off')),
    P('environment_timeout_s', 30.0, 'no environment reading for this long -> STALE, s', min=0.1, max=3600.0),
    P('seed', 1, 'sim environment random seed', min=0, max=2**31 - 1),
    P('pm2_5_limits_ug_m3', [35.0, 75.0], 'PM2.5 [warn, alarm] upper limits, ug/m3'),
    P('pm10_limits_ug_m3', [150.0, 300.0], 'PM10 [warn, alarm] upper limits, ug/m3'),
    P('temperature_warn_c', [15.0, 30.0], 'temperature band [low, high] outside which WARN, degC'),
    P('temperature_alarm_c', [5.0, 40.0], 'temperature band [low, high] outside which ERROR, degC'),
    P('humidity_warn_pct', [20.0, 70.0], 'relative humidity band [low, high] outside which WARN, %'),
    P('humidity_alarm_pct', [10.0, 90.0], 'relative humidity band [low, high] outside which ERROR, %'),
))

WEARABLE = NodeParams('wearable', (
    P('source', 'sim', 'sim: seeded simulated operator; topics: raw device topics (kept local to this node)',
      choices=('sim', 'topics')),
    P('heart_rate_topic', 'wearable/raw/heart_rate_bpm', 'topics source: std_msgs/Float64 heart rate, bpm'),
    P('imu_topic', 'wearable/raw/imu', 'topics source: sensor_msgs/Imu of the wrist device'),
    P('resting_hr_bpm', 65.0, 'operator resting heart rate, bpm', min=30.0, max=120.0),
    P('max_hr_bpm', 185.0, 'operator maximum heart rate (220 - age if not measured), bpm', min=100.0, max=230.0),
    P('hr_weight', 0.7, 'share of heart-rate reserve in the workload (rest: motion)', min=0.0, max=1.0),
    P('motion_full_scale_mps2', 4.0, 'dynamic wrist acceleration counted as full load, m/s^2', min=0.1, max=100.0),
    P('sustainable_load', 0.3, 'workload (0-1) kept up for a shift: above builds fatigue, below recovers',
      min=0.01, max=0.99),
    P('fatigue_time_constant_s', 3600.0, 'fatigue build-up time constant at full load, s', min=1.0, max=1e6),
    P('recovery_time_constant_s', 1200.0, 'recovery time constant at rest, s', min=1.0, max=1e6),
    P('initial_fatigue', 0.0, 'index at start (e.g. carried over from the last shift)', min=0.0, max=1.0),
    P('publish_rate_hz', 1.0, 'operator/fatigue and /diagnostics rate in Hz (node clock)', min=0.1, max=50.0),
    P('sim_rate_hz', 2.0, 'sim: simulated device sample rate in Hz', min=0.1, max=100.0),
    P('stale_timeout_s', 10.0, 'no plausible sample for this long -> STALE and stale_fatigue_index, s',
      min=0.1, max=3600.0),
    P('stale_fatigue_index', 1.0, 'published while the device is silent: 1 = assume tired, so the '
      'supervisor gives the robot the work', min=0.0, max=1.0),
    P('seed', 1, 'sim: random seed of the simulated operator', min=0, max=2**31 - 1),
))
