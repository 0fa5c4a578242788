"""Parameter specs of the cell's main nodes: twin, scanner, arm, supervisor.

Units are in the names. Defaults describe the simulated cell of urdf/ and config/cell.yaml.
"""
from __future__ import annotations

from smartcell.core.params import NodeParams, ParamSpec as P

TWIN = NodeParams('twin', (
    P('gui', False, 'open the PyBullet GUI window (headless DIRECT otherwise)', read_only=True),
    P('scenario', 'shift', 'person behaviour scenario (see smartcell sim --help for the list)'),
    P('seed', 1, 'random seed of the scenario and sensor noise', min=0, max=2**31 - 1),
    P('physics_rate_hz', 240.0, 'physics integration rate in Hz', min=60.0, max=2000.0),
    P('tick_rate_hz', 30.0, 'twin tick = safety scanner rate in Hz (25-40 like real safety scanners)',
      min=25.0, max=40.0),
    P('lockstep', False, 'wait for the arm command of every tick (deterministic, as fast as possible); '
      'otherwise paced by real_time_factor'),
    P('lockstep_lag_ticks', 1, 'lockstep: ticks between a scan and the arm command it produced being applied '
      '(modelled sensing-to-actuation delay; must be covered by the reaction time T_r)', min=1, max=4),
    P('min_subscribers', 1, 'lockstep: tick 0 is re-sent, and the run holds, until scan and twin/joint_states '
      'each have this many subscribers (2 with a recorder, so the recording starts with the run)', min=1, max=10),
    P('lockstep_timeout_s', 10.0, 'wall-clock seconds to wait for the arm in lockstep before failing',
      min=0.1, max=600.0),
    P('real_time_factor', 1.0, 'pacing when not in lockstep: simulated seconds per wall second',
      min=0.05, max=100.0),
    P('duration_s', 0.0, 'simulated seconds to run; 0 runs until shut down', min=0.0, max=1e7),
    P('urdf_path', '', 'robot URDF; empty uses the installed share/smartcell/urdf/ur5e.urdf'),
    P('scan_noise_m', 0.01, 'standard deviation of the simulated range noise in m', min=0.0, max=0.1),
    P('rated_force_limit_n', 120.0, "the simulated cobot's own safety force limit (UR: 50-250 N): a contact pushing "
      'this hard holds the arm until the person and the arm part; at most the quasi-static limit of every region '
      'exposed at the shared station (config/body_regions.yaml), checked at start-up', min=50.0, max=250.0),
    P('motions_file', '', "the arm's named configurations, swept through the cell at start-up (table, fence, "
      'furniture; the twin refuses to run with a collision); empty uses the installed config/motions.yaml '
      '(set cell-wide under /** so that the supervisor uses the same file)'),
    P('payload_kg', 1.0, 'tool + part mass the simulated arm carries, in its contact forces (set cell-wide under '
      "/**: it must equal the supervisor's, checked), kg", min=0.0, max=5.0),
    P('body_regions_file', '', 'ISO/TS 15066 body regions the contact forces are judged by; empty uses the installed '
      "config/body_regions.yaml (set cell-wide under /**: it must equal the supervisor's, checked)"),
))

SCANNER = NodeParams('scanner', (
    P('scanner_frame', 'scanner_link', 'frame_id expected on incoming scans'),
    P('world_frame', 'world', 'frame of the published people positions'),
    P('scanner_pose_xy_yaw', [0.0, 0.0, 0.0],
      'scanner pose in the world frame: x m, y m, yaw rad (the twin reports its own mount)'),
    P('monitored_area_m', [-6.0, -6.0, 6.0, 6.0], 'people are tracked inside xmin, ymin, xmax, ymax (m, world)'),
    P('cluster_gap_m', 0.10, 'range jump between neighbouring beams that splits clusters, m', min=0.01, max=1.0),
    P('max_leg_width_m', 0.35, 'wider clusters are not legs, m', min=0.05, max=1.0),
    P('max_leg_pair_distance_m', 0.65, 'two legs closer than this are one person, m', min=0.1, max=1.5),
    P('association_gate_m', 0.6, 'max distance between a track prediction and a detection, m', min=0.05, max=3.0),
    P('track_timeout_s', 0.5, 'a track unseen this long is dropped, s', min=0.0, max=5.0),
    P('range_noise_m', 0.02, "the scanner's range noise from its data sheet, 1 sigma, m (Kalman measurement noise, "
      'with the leg geometry)', min=0.001, max=0.2),
    P('accel_noise_mps2', 2.0, "a person's white-noise acceleration, 1 sigma, m/s^2 (Kalman process noise)",
      min=0.1, max=20.0),
    P('scan_timeout_s', 0.1, 'no scan for this long -> ERROR on /diagnostics, s', min=0.02, max=5.0),
    P('expected_scan_publisher', '', 'node name (or /namespace/name) that alone may publish `scan`; empty: any '
      'single publisher. A second or other publisher withholds people (ERROR naming it)'),
    P('scan_layout', [0.0, 0.0, 0.0, 0.0, 0.0], 'expected beam layout: angle_min rad, angle_increment rad, beam '
      'count, range_min m, range_max m; all zero: fixed by the first valid scan. A scan with another layout '
      'is rejected (the tracker is never rebuilt)'),
    P('protective_sector_rad', [-3.1416, 3.1416], 'scanner-frame bearings lo, hi (rad) where a single '
      'unknown beam (NaN, -inf, below range_min) rejects the scan; default the whole field of view'),
    P('max_invalid_beams', 0, 'unknown beams tolerated per scan outside protective_sector_rad', min=0, max=100),
    P('max_stamp_step_s', 1.0, 'largest stamp advance between two accepted scans; a jump or a step back is '
      'rejected until rearm scans confirm a new time base, s', min=0.05, max=60.0),
    P('max_stamp_offset_s', 0.5, 'a scan stamped further than this from the node clock is rejected; 0: no clock '
      'comparison (lockstep simulation runs on the tick stamps), s', min=0.0, max=60.0),
    P('background_file', '', 'static background of the empty cell (JSON, `smartcell teach-background`): readings '
      'within background_tolerance_m of it are not leg candidates; a relative path is in the installed share '
      'directory. It fixes the beam layout; a missing or unreadable file, or one taught for another frame, mount '
      '(scanner_pose_xy_yaw) or scan_layout, refuses to start. Empty = no background'),
    P('background_tolerance_m', 0.05, 'a reading within this of its beam\'s background is the background; only '
      'readings at the static scene are dropped, never shorter or longer ones (at most 0.06: below a leg\'s '
      'thickness), m', min=0.005, max=0.06),
))

ARM = NodeParams('arm', (
    P('backend', 'sim', 'sim drives the PyBullet twin; ros2_control streams to a vendor driver',
      choices=('sim', 'ros2_control')),
    P('controller_topic', '/scaled_joint_trajectory_controller/joint_trajectory',
      'ros2_control backend: the joint trajectory controller command topic'),
    P('driver_joint_states_topic', '/joint_states', 'ros2_control backend: joint states from the driver'),
    P('control_rate_hz', 50.0, 'ros2_control backend: streaming rate in Hz', min=5.0, max=1000.0),
    P('stream_horizon_s', 0.1, 'ros2_control backend: each streamed point lies this far ahead, s',
      min=0.005, max=2.0),
    P('deadman_timeout_s', 0.25, 'no speed limit for this long -> the arm stops by itself (above the loaded '
      'verdict period, within T_r: docs/safety.md, Timing budget), s',
      min=0.02, max=5.0),
    P('scale_ramp_down_per_s', 4.0, 'speed-scale decrease rate, 1/s (fast to slow down; set cell-wide under /**: the '
      "supervisor's bound of the applied scale assumes it)", min=0.5, max=100.0),
    P('scale_ramp_up_per_s', 0.5, "speed-scale increase rate, 1/s (slow to speed up; at least the supervisor's "
      'ramp_up_per_s, checked when the cell file loads)', min=0.05, max=10.0),
    P('lockstep', False, 'sim backend: handle tick t only with the twin state and safety verdict of tick t'),
    P('initial_positions_rad', [-1.571, -1.571, 1.571, -1.571, -1.571, 0.0],
      'sim backend: joint positions before the first twin state arrives, rad'),
    P('max_joint_speed_fraction', 0.5, 'trajectories faster than this fraction of any joint speed limit are '
      "refused (set cell-wide under /**: the supervisor's SSM takes its stopping data at this fraction)",
      min=0.05, max=1.0),
    P('cell_id', 'cell-1', 'cell id (set cell-wide under /**); names the default cell key file'),
    P('cell_key_file', '', 'the cell key that signs verdicts and trajectories (set cell-wide under /**, the same '
      'file for the supervisor; 32 bytes, mode 0600, created when missing); empty: '
      '<ROS_HOME or ~/.ros>/smartcell/<cell_id>.key'),
    P('require_authenticated_commands', True, 'accept only verdicts and trajectories signed with the cell key '
      'and published by supervisor_node alone; false restores the unauthenticated behaviour (tests, and '
      'a supervisor that does not sign yet)'),
    P('supervisor_node', 'supervisor', "the only node (in the arm's namespace) allowed to publish safety/verdict "
      'and arm/joint_trajectory and to call arm/resume'),
    P('input_fault_hold_s', 1.0, 'a refused input (stray publisher, bad signature, malformed message, internal '
      'error) holds the arm until it has not recurred for this long (steady time), s', min=0.1, max=60.0),
    P('clock_jump_tolerance_s', 0.25, 'a joint state or verdict stamped more than this before the previous one is '
      'a clock jump (restarted twin, sim-time reset): hold until fresh, consistent data, s', min=0.0, max=10.0),
))

SUPERVISOR = NodeParams('supervisor', (
    P('cell_id', 'cell-1', 'the cell\'s name in events, diagnostics and MES records; names the default cell key '
      'file (set cell-wide under /**)'),
    P('cell_key_file', '', 'the cell key that signs verdicts and trajectories for the arm (set cell-wide under '
      '/**, the same file as the arm; 32 bytes, mode 0600, created when missing); empty: '
      '<ROS_HOME or ~/.ros>/smartcell/<cell_id>.key'),
    P('warning_distance_m', 2.5, 'person closer than this to the robot -> reduced speed, m', min=0.1, max=10.0),
    P('protective_distance_m', 0.6, 'person closer than this -> protective stop, m', min=0.05, max=10.0),
    P('reduced_speed_scale', 0.3, 'speed scale in the warning zone', min=0.0, max=1.0),
    P('people_timeout_s', 0.17, 'people data older or silent longer than this -> protective stop '
      '(5 scanner periods at 30 Hz: the loaded maximum measured by bench_timing_budget), s', min=0.01, max=2.0),
    P('robot_state_timeout_s', 0.2, 'joint states older than this -> protective stop, s', min=0.01, max=2.0),
    P('lockstep', False, 'evaluate people data of time t with the robot state of time t (simulation)'),
    P('expected_people_publisher', 'scanner', 'the only node (in this namespace) whose `humans` are trusted; a '
      'second or other publisher is a protective stop with an ERROR naming it. Empty: any single publisher'),
    P('world_frame', 'world', 'frame people data must be expressed in'),
    P('mode', 'automatic', 'safety mode at start (changed later only through the safety/mode/* services)',
      choices=('automatic', 'collaborative', 'manual_reduced')),
    P('reaction_time_s', 0.31, 'T_r of ISO/TS 15066: sensing + processing + actuation; at least 1.5 x '
      'people_timeout_s + 0.05 s (checked at start-up), s', min=0.01, max=2.0),
    P('human_speed_floor_mps', 1.6, 'person speed never assumed below this (ISO 13855), m/s', min=1.6, max=3.0),
    P('intrusion_distance_m', 0.65, 'C: reach beyond the sensed body, m', min=0.0, max=2.0),
    P('sensor_uncertainty_m', 0.10, 'Z_d: person position uncertainty, m', min=0.0, max=1.0),
    P('robot_position_uncertainty_m', 0.02, 'Z_r: robot position uncertainty, m', min=0.0, max=0.5),
    P('resume_hold_s', 0.5, 'after a stop, separation must stay safe this long before the arm restarts, s',
      min=0.0, max=30.0),
    P('ramp_up_per_s', 0.5, "speed-scale increase rate, after a restart's hold too (at most the arm's "
      'scale_ramp_up_per_s), 1/s', min=0.05, max=10.0),
    P('payload_kg', 1.0, 'tool + part mass (stopping model and PFL), kg', min=0.0, max=5.0),
    P('scanner_protective_field_m', 2.2, "distance of the safety scanner's own (safety-rated) protective "
      'field from the hazard zone; checked at start-up against ISO 13855 S = K T + C, m', min=0.0, max=20.0),
    P('scanner_response_time_s', 0.08, 'safety scanner response time (part of T of ISO 13855), s', min=0.0, max=1.0),
    P('light_curtain_distance_m', 0.0, 'distance of a light curtain across the fence opening from the hazard zone; '
      'checked at start-up against ISO 13855 (perpendicular approach); 0: no light curtain, m', min=0.0, max=20.0),
    P('light_curtain_resolution_mm', 30.0, 'detection capability d of that light curtain, mm', min=1.0, max=70.0),
    P('light_curtain_response_time_s', 0.015, 'response time of that light curtain (part of T), s', min=0.0, max=1.0),
    P('scan_plane_height_m', 0.17, 'height of the scan plane above the floor (H of ISO 13855), m', min=0.0, max=1.0),
    P('stopping_file', '', 'stopping time/distance table; empty uses the installed config/stopping.yaml'),
    P('body_regions_file', '', 'ISO/TS 15066 body regions; empty uses the installed config/body_regions.yaml'),
    P('robot_base_xyz_yaw', [0.0, 0.0, 0.0, 0.0], 'robot base_link pose in the world frame: x, y, z m, yaw rad'),
    P('cycle_waypoints', 'pick_place', 'name of the pick-and-place cycle the arm runs when no job is loaded'),
    P('motions_file', '', 'named arm configurations and cycles; empty uses the installed config/motions.yaml'),
    P('nominal_speed_fraction', 0.5, 'planned joint speed as a fraction of each joint limit '
      '(at most max_joint_speed_fraction)', min=0.05, max=1.0),
    P('max_joint_speed_fraction', 0.5, 'the fastest joint speed the arm allows, as a fraction of its limits (set '
      'cell-wide under /**; the arm enforces it): SSM stopping times and distances at speed scale 1 are '
      'taken at this fraction', min=0.05, max=1.0),
    P('scale_ramp_down_per_s', 4.0, "the arm's speed-scale decrease rate (set cell-wide under /**; the arm "
      'enforces it): while it slows, the scale it applies is bounded from below by this ramp, and its speed '
      'at full scale is taken from that bound; 1/s', min=0.5, max=100.0),
    P('auto_start', False, 'start the cell by itself on the first valid safety cycle (simulation)'),
    P('evidence_log', '', 'append-only safety evidence log (JSON lines); empty: none'),
    P('evidence_anchor_period_s', 60.0, 'the evidence log\'s head (seq, hash) is sent on cell/events as a signed '
      '`evidence_anchor` event this often (node clock), and the MES bridge seals it on its `anchor` stream: a copy '
      'of the anchor off this machine; 0: never, s', min=0.0, max=86400.0),
    P('order_store_file', '', 'SQLite file of the job orders received and their ISA-95 states (duplicates are '
      'refused across restarts); empty: <ROS_HOME or ~/.ros>/smartcell/orders_<cell_id>.sqlite, in a namespace '
      'orders_<cell_id>_<namespace>.sqlite'),
    P('event_journal_file', '', 'SQLite journal of every cell event, written before the event is published on '
      'cell/events (seq continues from it after a restart; the MES bridge has what it missed replayed from it); '
      'empty: <ROS_HOME or ~/.ros>/smartcell/events_<cell_id>.sqlite, in a namespace '
      'events_<cell_id>_<namespace>.sqlite'),
    P('job', '', 'job recipe to run: a name in the installed config/ (e.g. job_demo) or a path; '
      'empty: the pick-and-place cycle'),
    P('units', 3, 'units of the job to make per start', min=1, max=100000),
    P('max_order_units', 10000, 'largest quantity a job order may ask for; larger orders are rejected', min=1,
      max=1000000),
    P('plan_horizon_units', 3, 'units the job runner plans at once (a large order is planned batch by batch, so '
      'the safety loop never waits for planning)', min=1, max=50),
    P('late_threshold_s', 15.0, 'a person step this long past its expected end is late -> re-plan, s',
      min=1.0, max=3600.0),
    P('fatigue_high', 0.7, 'fatigue index at/above which either-steps go to the robot', min=0.0, max=1.0),
    P('fatigue_low', 0.5, 'fatigue index at/below which they may go back to the person', min=0.0, max=1.0),
    P('person_absent_s', 30.0, 'during a job, nobody tracked this long while the person has a step (a step of '
      'their own out of view counts until its nominal end) means the person left: their unfinished step goes '
      'back to pending and steps either may do go to the robot; seen again or a step acknowledged: back, s',
      min=1.0, max=3600.0),
    P('collaborative_regions_xyr', [0.0, 0.0, 0.0], 'shared workspaces, x, y, radius (m, world) per region: '
      'while the cell runs (a job or the bare cycle) and every tracked person is inside one, it runs in '
      'collaborative mode (PFL caps) instead of separation stops; a radius of 0 declares none'),
    P('station_positions_xy', ['pick 0.35 -0.35', 'place -0.35 0.35', 'assembly 0.70 0.0', 'operator_bench 3.6 -1.1'],
      "stations, 'NAME X Y' (m, world; the twin layout's): during a job a robot step at a station within "
      'person_reach_m of a tracked person waits while another robot step out of reach can start; the scheduler '
      'plans the person\'s walks between them'),
    P('person_walking_speed_mps', 1.6, "the person's walking speed the scheduler plans their walks between stations "
      'with (straight lines between station_positions_xy: a lower bound round tables and through the fence '
      'opening); 0: walks not planned, m/s', min=0.0, max=3.0),
    P('person_reach_m', 0.85, 'a station this close to a tracked person is in their reach (ISO 13855 C = 850 mm), m',
      min=0.05, max=3.0),
    P('handover_presence_m', 1.2, 'a handover: the arm moves into the handover pose only while a tracked person '
      'stands within this horizontal distance of the part (gripper tip), m', min=0.3, max=3.0),
    P('operator_users_file', '', 'the MES users file (name: {password_hash, role}; docs/mes.md): its operators may '
      'authorise collaborative mode, reset after an emergency stop and the first start after it (signed requests '
      'on cell/operator_request; mode 0600: the hashes are keys); empty: nobody can'),
    P('operator_request_window_s', 5.0, 'a signed operator request stamped further than this from the '
      "supervisor's wall clock is refused (replays inside it are refused by nonce), s", min=0.5, max=60.0),
    P('arm_node', 'arm', "the arm node (in this namespace) whose max_joint_speed_fraction must equal this node's "
      'and whose scale_ramp_down_per_s must not exceed it (checked through its get_parameters service; a '
      'mismatch holds a protective stop); empty: not checked'),
))

RECORDER = NodeParams('recorder', (
    P('output_file', '', 'MCAP file to write (rosbag2-compatible, ROS 2 CDR); empty: '
      '<ROS_HOME or ~/.ros>/smartcell/recordings/<UTC time>.mcap (`smartcell sim --record` writes <run dir>/run.mcap)'),
    P('compression', 'zstd', 'chunk compression (zstd is what rosbag2\'s zstd_fast preset writes)',
      choices=('zstd', 'lz4', 'none')),
    P('topics', ['humans geometry_msgs/msg/PoseArray', 'humans/velocities sensor_msgs/msg/PointCloud2',
                 'joint_states sensor_msgs/msg/JointState',
                 'safety/verdict diagnostic_msgs/msg/DiagnosticArray', 'speed_scale std_msgs/msg/Float64 latched',
                 'cell/state std_msgs/msg/String latched', 'cell/events std_msgs/msg/String',
                 'arm/joint_trajectory trajectory_msgs/msg/JointTrajectory',
                 'arm/trajectory_result diagnostic_msgs/msg/DiagnosticStatus',
                 'twin/contacts diagnostic_msgs/msg/DiagnosticArray', 'operator/fatigue std_msgs/msg/Float64 latched',
                 'mes/job_order std_msgs/msg/String latched', 'scan sensor_msgs/msg/LaserScan',
                 'twin/joint_states sensor_msgs/msg/JointState', 'twin/joint_command sensor_msgs/msg/JointState',
                 '/clock rosgraph_msgs/msg/Clock'],
      'topics subscribed at start, before their publishers exist ("TOPIC pkg/msg/Type [latched]"), so that a run is '
      'recorded from its first message (replay needs humans, humans/velocities, joint_states and safety/verdict '
      'whole); other topics are found on the ROS graph'),
    P('exclude_topics', ['/parameter_events'], 'topics not recorded (every other topic of the graph is)'),
    P('discovery_period_s', 0.1, 'how often the ROS graph is scanned for new topics (steady clock), s',
      min=0.01, max=10.0),
    P('queue_depth', 1000, 'subscription history per topic: how far the recorder may fall behind without '
      'losing messages', min=10, max=100000),
    P('config_node', 'supervisor', 'node whose parameters are stored in the file (metadata `smartcell`) for '
      '`smartcell replay`; empty: none'),
    P('drain_s', 1.0, 'on shutdown, keep writing until no message came for 0.1 s, at most this long, s',
      min=0.0, max=30.0),
))

HMI = NodeParams('hmi', (
    P('cell_id', 'cell-1', "the cell's name shown on the page and in action records (set cell-wide under /**)"),
    P('host', '127.0.0.1', 'address the operator station listens on (0.0.0.0: every interface; then a users file '
      'needs tls_cert_file, passwords must not cross the shop floor in the clear)'),
    P('port', 0, 'TCP port of the operator station; 0: a free port chosen at start and logged (two cells on one '
      'machine never collide)', min=0, max=65535),
    P('users_file', '', 'the MES users file (name: {password_hash, role}; see docs/mes.md); operators may act, '
      'viewers only look; empty: the station is view-only'),
    P('tls_cert_file', '', 'PEM certificate for HTTPS/WSS; empty: plain HTTP (loopback only with a users file)'),
    P('tls_key_file', '', 'PEM private key of tls_cert_file'),
    P('session_timeout_s', 28800.0, 'a login lasts this long (one shift), s', min=60.0, max=86400.0),
    P('action_timeout_s', 5.0, 'a service that has not answered within this long is reported as failed, s',
      min=0.1, max=60.0),
    P('push_period_s', 0.05, 'shortest interval between two state pushes to a browser, s', min=0.01, max=1.0),
    P('action_log', '', 'JSON-lines file of every operator action (who, what, when, result); empty: node log and '
      'the hmi/actions topic only'),
))

ROBOT_STATE = NodeParams('robot_state', (
    P('world_frame', 'world', 'root of the TF tree; people and layout frames hang from it'),
    P('robot_base_xyz_yaw', [0.0, 0.0, 0.0, 0.0], 'world -> base_link: x, y, z m, yaw rad (set cell-wide under /**: '
      "the supervisor's separation monitoring uses the same value)"),
    P('scanner_pose_xy_yaw', [0.0, 0.0, 0.0], "world -> scanner_frame: x m, y m, yaw rad (set cell-wide under /**: "
      "the scanner node's people tracking uses the same value)"),
    P('scanner_frame', 'scanner_link', 'frame of the safety laser scanner (the frame_id of `scan`)'),
    P('scanner_height_m', 0.17, 'height of the scan plane above the floor, m (drawing only: tracking is 2D)',
      min=0.0, max=3.0),
    P('urdf_path', '', 'robot URDF published on /robot_description; empty: the installed urdf/ur5e.urdf'),
    P('links_tf', True, "publish the robot's link frames (/tf from joint_states, fixed joints on /tf_static) and "
      '/robot_description, as robot_state_publisher does; the launch file sets it false on hardware where '
      'robot_state_publisher is installed and starts that instead'),
    P('person_frame_prefix', 'person_', 'each tracked person of `humans` gets the frame <prefix><index>'),
    P('stale_timeout_s', 1.0, 'no valid joint states for this long -> WARN on /diagnostics (link frames go stale), s',
      min=0.05, max=60.0),
))
