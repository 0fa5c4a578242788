"""The simulated cell: floor, work table with the UR5e, stations, fence, people, safety scanner.

World frame: z up, origin on the floor straight under the robot's base_link, x towards the
operator side (the fence opening and the shared assembly station). See docs/twin.md.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pybullet as p

from smartcell.core.robot.kinematics import (JOINT_NAMES, LINK_CAPSULE_RADII, UR5E_LIMITS, link_capsules,
                                       segment_distances)
from smartcell.core.safety.pfl import UR5E_MOVING_MASS_KG, BodyModel, ContactEpisode, ContactForceModel
from smartcell.twin.human import (BODY_MODEL_REGIONS, ISO_TS_15066_REGIONS, BodyDimensions, PersonPath, PersonState,
                                  SimulatedPerson)
from smartcell.twin.robot import RobotHandle, default_urdf_path, load_robot, reset_joints

# How far past a region's lower bound a closest-point query reaches (m): the bounds are within a
# few cm of the truth, so one query per region usually settles it.
DISTANCE_QUERY_SLACK_M = 0.15

# Arm pose at start: config/motions.yaml `home` (rad, JOINT_NAMES order; test_motions_layout keeps them equal).
HOME_Q_RAD = (-1.571, -1.571, 1.571, -1.571, -1.571, 0.0)

# The robot's own safety function (PFL): the force at which it stops a pushing contact, N. UR's
# safety configuration sets it between 50 and 250 N; it must stay at or below the quasi-static limit
# of every region exposed at the shared station (hands 140 N), which ContactForceModel checks.
RATED_FORCE_LIMIT_N = 120.0
# After a rated stop the arm resumes only when its command is this close to where it was held (rad,
# each joint): the arm's controller must start again from there (it re-plans, as after a cobot's stop).
# Tight: the position servo turns 0.02 rad of error into 1.4 rad/s at the shoulder.
RATED_STOP_RESUME_TOLERANCE_RAD = 0.001
PAYLOAD_KG = 1.0                # tool + part


def default_contact_model(rated_force_limit_N: float = RATED_FORCE_LIMIT_N, payload_kg: float = PAYLOAD_KG,
                          body_regions_path: str | Path | None = None) -> ContactForceModel:
    """The UR5e's moving mass with this payload and rated force limit, and the body regions of
    body_regions_path, else the installed config/body_regions.yaml (else this checkout's)."""
    path = body_regions_path
    if not path:
        path = Path(__file__).resolve().parents[2] / 'config' / 'body_regions.yaml'
        try:
            from smartcell.share import share_file
            path = share_file('config', 'body_regions.yaml')
        except (ImportError, OSError):
            pass
    return ContactForceModel(BodyModel.from_yaml(path), UR5E_MOVING_MASS_KG, payload_kg, rated_force_limit_N)


def connect(gui: bool = False) -> int:
    """Open a PyBullet physics client: headless DIRECT unless gui; returns its client id."""
    client = p.connect(p.GUI if gui else p.DIRECT)
    if client < 0:
        raise RuntimeError('PyBullet could not open a ' + ('GUI (is there a display?)' if gui else 'DIRECT')
                           + ' physics client')
    return client


def disconnect(client_id: int) -> None:
    """Close a client opened by connect(); closing one that is already closed does nothing."""
    if p.isConnected(physicsClientId=client_id):
        p.disconnect(physicsClientId=client_id)


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Box:
    """A static box: size (x, y, z) m, centre (x, y, z) m and yaw rad in the world."""

    name: str
    size_m: tuple[float, float, float]
    centre_m: tuple[float, float, float]
    yaw_rad: float = 0.0
    rgba: tuple[float, float, float, float] = (0.6, 0.6, 0.6, 1.0)


@dataclass(frozen=True)
class Station:
    """A work place: the work point (m, world) and, if people work there, where they stand."""

    name: str
    position_m: tuple[float, float, float]
    yaw_rad: float = 0.0
    person_xy_m: tuple[float, float] | None = None
    shared: bool = False                # humans and the robot both work here (collaborative)

    def person_position_m(self) -> tuple[float, float]:
        """`person_xy_m`, for a path that walks to it; a station without one has no place for a person."""
        if self.person_xy_m is None:
            raise ValueError(f'station {self.name!r} has no person_xy_m: nobody works there')
        return self.person_xy_m


@dataclass(frozen=True)
class Fence:
    """Rectangular guard fence (m, world) with one opening in its xmax side."""

    xmin_m: float
    ymin_m: float
    xmax_m: float
    ymax_m: float
    height_m: float = 1.4
    thickness_m: float = 0.04
    opening_centre_y_m: float = 1.1     # the opening is in the x = xmax side
    opening_width_m: float = 1.0

    def panels(self) -> tuple[Box, ...]:
        t, h = self.thickness_m, self.height_m
        yellow = (0.95, 0.80, 0.10, 1.0)                   # safety yellow
        lo = self.opening_centre_y_m - self.opening_width_m / 2
        hi = self.opening_centre_y_m + self.opening_width_m / 2
        if not self.ymin_m < lo < hi < self.ymax_m:
            raise ValueError(f'fence opening [{lo}, {hi}] m must lie inside the side [{self.ymin_m}, {self.ymax_m}] m')
        width_x, width_y = self.xmax_m - self.xmin_m, self.ymax_m - self.ymin_m
        mid_x, mid_y = (self.xmin_m + self.xmax_m) / 2, (self.ymin_m + self.ymax_m) / 2
        return (
            Box('fence_xmin', (t, width_y, h), (self.xmin_m, mid_y, h / 2), rgba=yellow),
            Box('fence_ymin', (width_x, t, h), (mid_x, self.ymin_m, h / 2), rgba=yellow),
            Box('fence_ymax', (width_x, t, h), (mid_x, self.ymax_m, h / 2), rgba=yellow),
            Box('fence_xmax_low', (t, lo - self.ymin_m, h), (self.xmax_m, (self.ymin_m + lo) / 2, h / 2), rgba=yellow),
            Box('fence_xmax_high', (t, self.ymax_m - hi, h), (self.xmax_m, (hi + self.ymax_m) / 2, h / 2), rgba=yellow),
        )


@dataclass(frozen=True)
class ScannerMount:
    """Safety laser scanner pose: position (m, world) and yaw (rad) of the scan's 0 angle."""

    position_m: tuple[float, float, float]
    yaw_rad: float
    frame_id: str = 'scanner_link'


@dataclass(frozen=True)
class Area:
    """Axis-aligned rectangle on the floor (m, world) where people may walk."""

    xmin_m: float
    ymin_m: float
    xmax_m: float
    ymax_m: float

    def sample(self, rng: np.random.Generator) -> tuple[float, float]:
        return (float(rng.uniform(self.xmin_m, self.xmax_m)), float(rng.uniform(self.ymin_m, self.ymax_m)))

    def contains(self, xy: tuple[float, float]) -> bool:
        return self.xmin_m <= xy[0] <= self.xmax_m and self.ymin_m <= xy[1] <= self.ymax_m


REQUIRED_STATIONS = ('pick', 'place', 'assembly', 'operator_bench')


@dataclass(frozen=True)
class CellLayout:
    """Everything static in the cell and where people can go. Distances in m, angles in rad."""

    floor_size_m: tuple[float, float]
    table: Box
    robot_base_position_m: tuple[float, float, float]
    robot_base_yaw_rad: float
    stations: tuple[Station, ...]
    fence: Fence
    scanner: ScannerMount
    furniture: tuple[Box, ...] = ()              # other static boxes (e.g. the operator bench)
    door_outside_xy_m: tuple[float, float] = (2.9, 1.1)     # just outside the opening
    door_inside_xy_m: tuple[float, float] = (2.1, 1.1)      # just inside it
    inside_areas: tuple[Area, ...] = ()          # free floor inside the fence (each reachable in a
                                                 # straight line from door_inside_xy_m)
    outside_area: Area = Area(2.9, -2.0, 5.5, 3.0)
    by_name: dict[str, Station] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'by_name', {s.name: s for s in self.stations})
        missing = [name for name in REQUIRED_STATIONS if name not in self.by_name]
        if missing:
            raise ValueError(f'cell layout lacks station(s) {missing}; required: {list(REQUIRED_STATIONS)}')

    def station(self, name: str) -> Station:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f'unknown station {name!r}; stations: {sorted(self.by_name)}') from None

    def static_boxes(self) -> tuple[Box, ...]:
        return (self.table, *self.fence.panels(), *self.furniture)


TABLE_HEIGHT_M = 0.75

DEFAULT_LAYOUT = CellLayout(
    floor_size_m=(12.0, 12.0),
    # A closed cabinet table (x -0.6..0.9, y -0.5..0.5): solid down to the floor, so the scanner
    # sees a wall, not four table legs that would look like two people.
    table=Box('work_table', (1.5, 1.0, TABLE_HEIGHT_M), (0.15, 0.0, TABLE_HEIGHT_M / 2), rgba=(0.45, 0.47, 0.5, 1)),
    robot_base_position_m=(0.0, 0.0, TABLE_HEIGHT_M),
    robot_base_yaw_rad=0.0,
    stations=(
        Station('pick', (0.35, -0.35, TABLE_HEIGHT_M)),
        Station('place', (-0.35, 0.35, TABLE_HEIGHT_M)),
        Station('assembly', (0.70, 0.0, TABLE_HEIGHT_M), person_xy_m=(1.20, 0.0), shared=True),
        Station('operator_bench', (3.6, -1.1, 0.9), yaw_rad=-math.pi / 2, person_xy_m=(3.6, -0.55)),
    ),
    # Tight on the back (x = -0.75) and right (y = -0.65) sides, where the table hides the floor
    # from the scanner: the 0.15 m gaps are too narrow for a person.
    fence=Fence(-0.75, -0.65, 2.5, 2.0, opening_centre_y_m=1.1, opening_width_m=1.0),
    # At the table's front-left corner, 0.17 m above the floor, facing diagonally out: the 270 deg
    # field covers the front and left of the cell and the opening; the table fills the rest.
    scanner=ScannerMount((0.95, 0.55, 0.17), math.pi / 4),
    furniture=(Box('operator_bench', (1.2, 0.6, 0.9), (3.6, -1.1, 0.45), rgba=(0.55, 0.4, 0.25, 1)),),
    door_outside_xy_m=(2.9, 1.1),
    door_inside_xy_m=(2.1, 1.1),
    inside_areas=(Area(1.3, -0.3, 2.1, 1.7), Area(-0.4, 0.9, 2.1, 1.7)),
    outside_area=Area(2.9, -2.0, 5.5, 3.0),
)


# ---------------------------------------------------------------------------------------------
# The world
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Contact:
    """A person touching the robot, summed over the contact points of one region-link pair."""

    person: str
    region: str                     # one of human.REGION_NAMES
    iso_region: str                 # the ISO/TS 15066 body region it stands for
    body_regions: tuple[str, ...]   # its region name(s) in config/body_regions.yaml (PFL limits)
    robot_link: str
    normal_force_n: float           # N, the ISO/TS 15066 Annex A model's peak over the last step (see CellWorld)
    position_m: tuple[float, float, float]      # deepest point, on the robot, world frame
    closing_speed_mps: float = 0.0  # relative speed along the normal at the first touch, m/s
    rated_force_stop: bool = False  # the robot's own force limit stopped it on this contact
    robot_force_n: float = 0.0      # N, the robot's share (its own speed, its push): what PFL limits


class CellWorld:
    """The cell in one PyBullet client: static scene, the arm, people following their paths.

    Time advances only in step(dt), in fixed physics substeps of 1/physics_rate_hz; people are
    placed kinematically at the end of every step for the new sim_time.

    People and the arm do not meet in the rigid solver: a scripted person cannot yield, so a rigid
    contact would be an infinitely stiff, infinitely heavy hand (154-605 N from an arm at
    0.09-0.26 m/s). After every substep each overlap of a body region and a robot link is a contact
    episode of `contact_model` (ISO/TS 15066 Annex A: the transient peak of the first touch, then the
    region's spring compressed by the arm's own motion into it); where that reaches the robot's rated
    force limit, the arm holds where it is, as the cobot's own safety function stops it, until the
    region and the link part and the arm's command starts again from where it stands.
    """

    def __init__(self, client_id: int, layout: CellLayout = DEFAULT_LAYOUT, urdf_path: str | Path | None = None,
                 seed: int = 0, people: tuple[PersonPath, ...] | list[PersonPath] = (),
                 physics_rate_hz: float = 240.0, initial_q_rad: tuple[float, ...] = HOME_Q_RAD,
                 body: BodyDimensions = BodyDimensions(), contact_model: ContactForceModel | None = None) -> None:
        if not 60.0 <= physics_rate_hz <= 2000.0:
            raise ValueError(f'physics_rate_hz must be in [60, 2000] Hz, got {physics_rate_hz}')
        if not p.isConnected(physicsClientId=client_id):
            raise ValueError(f'physics client {client_id} is not connected; open one with connect()')
        self.client_id = client_id
        self.layout = layout
        self.physics_rate_hz = float(physics_rate_hz)
        # Seeded Generator for this world's sensors (e.g. SafetyScanner(..., rng=world.rng)); the
        # people's paths come seeded from scenarios, so nothing in the twin draws unseeded numbers.
        self.rng = np.random.default_rng(seed)
        self._sim_time_s = 0.0
        self._substeps_done = 0
        self._closed = False
        self._capsules_cache: tuple[bytes, np.ndarray] = (b'', np.empty((0, 2, 3)))
        cid = client_id
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / self.physics_rate_hz, numSubSteps=0, physicsClientId=cid)
        self._static_ids: list[int] = [self._make_floor()]
        self._static_ids += [self._make_box(box) for box in layout.static_boxes()]
        self._marker_ids = [self._make_station_marker(s) for s in layout.stations] + [self._make_scanner_marker()]
        self.robot: RobotHandle = load_robot(cid, urdf_path or default_urdf_path(), layout.robot_base_position_m,
                                             layout.robot_base_yaw_rad)
        # The twin is about people and the arm: arm-versus-furniture collisions are the motion
        # planner's business, and contacts with the table it stands on would only add noise.
        for link in self.robot.link_names:
            for static in self._static_ids:
                p.setCollisionFilterPair(self.robot.body_id, static, link, -1, 0, physicsClientId=cid)
        reset_joints(self.robot, np.asarray(initial_q_rad))
        self._q_target = np.asarray(initial_q_rad, dtype=float)
        self._qd_target = np.zeros(len(JOINT_NAMES))
        # Where the servo's reference stood at the end of the last step: a new set-point is reached by
        # the end of the next step along a straight line, as a robot controller interpolates a stream.
        self._q_from = self._q_target.copy()
        self._apply_joint_targets()
        self.paths: list[PersonPath | None] = list(people)
        self.people: list[SimulatedPerson] = [SimulatedPerson(cid, f'person_{i}', body, path.state_at(0.0))
                                              for i, path in enumerate(people)]
        self._person_of_body: dict[int, tuple[str, str]] = {}
        for person in self.people:
            for body_id, region in person.region_by_body.items():
                self._person_of_body[body_id] = (person.name, region)
                for link in self.robot.link_names:     # contacts are the contact model's, see the class
                    p.setCollisionFilterPair(self.robot.body_id, body_id, link, -1, 0, physicsClientId=cid)
        self.contact_model = contact_model or default_contact_model()
        self._episodes: dict[tuple[str, str, str], ContactEpisode] = {}
        self._step_contacts: dict[tuple[str, str, str], Contact] = {}
        self._rated_hold = False
        self._held_q = np.asarray(initial_q_rad, dtype=float)
        # Each person region's pose at the placement before the last and the time between the two: the
        # velocity of a point on it, for closing speeds (a reaching hand moves faster than its forearm's centre).
        self._placed_at_s, self._placement_dt_s = 0.0, 0.0
        self._pose_before: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- scene building ------------------------------------------------------------------------

    def _make_floor(self) -> int:
        # A thin box, not an infinite plane: its bounding box stays below the scan plane, so the
        # scanner's rays skip it in the broad phase (nothing rests on the floor: people are
        # kinematic and the robot is bolted to the table).
        half = [*(s / 2 for s in self.layout.floor_size_m), 0.005]
        shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client_id)
        visual = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=[0.82, 0.82, 0.8, 1],
                                     physicsClientId=self.client_id)
        return p.createMultiBody(0.0, shape, visual, [0, 0, -0.005], physicsClientId=self.client_id)

    def _make_box(self, box: Box) -> int:
        half = [s / 2 for s in box.size_m]
        shape = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=self.client_id)
        visual = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=box.rgba, physicsClientId=self.client_id)
        return p.createMultiBody(0.0, shape, visual, box.centre_m, p.getQuaternionFromEuler((0, 0, box.yaw_rad)),
                                 physicsClientId=self.client_id)

    def _make_station_marker(self, station: Station) -> int:
        # Visual only: a flat tile on the work surface; nothing for rays or contacts to hit.
        colour = (0.1, 0.7, 0.2, 1) if station.shared else (0.2, 0.3, 0.8, 1)
        visual = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.1, 0.1, 0.004], rgbaColor=colour,
                                     physicsClientId=self.client_id)
        x, y, z = station.position_m
        return p.createMultiBody(0.0, -1, visual, [x, y, z + 0.004], physicsClientId=self.client_id)

    def _make_scanner_marker(self) -> int:
        # Visual only, so the scanner's own housing never blocks its beams.
        visual = p.createVisualShape(p.GEOM_CYLINDER, radius=0.05, length=0.15, rgbaColor=(0.95, 0.85, 0.1, 1),
                                     physicsClientId=self.client_id)
        return p.createMultiBody(0.0, -1, visual, self.layout.scanner.position_m, physicsClientId=self.client_id)

    # -- arm -----------------------------------------------------------------------------------

    def set_joint_targets(self, q_rad: np.ndarray, qd_radps: np.ndarray | None = None) -> None:
        """Position control towards q (rad) with feed-forward qd (rad/s); speed and torque are
        limited to the UR5e's joint limits. A non-finite or out-of-range target is refused."""
        q = np.array(q_rad, dtype=float)        # a copy: the caller may reuse its array for the next one
        qd = np.zeros(len(JOINT_NAMES)) if qd_radps is None else np.array(qd_radps, dtype=float)
        if q.shape != (len(JOINT_NAMES),) or qd.shape != (len(JOINT_NAMES),):
            raise ValueError(f'joint targets need {len(JOINT_NAMES)} values in order {JOINT_NAMES}, '
                             f'got shapes {q.shape} and {qd.shape}')
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
            raise ValueError(f'joint targets must be finite, got q={q}, qd={qd}')
        outside = (q < UR5E_LIMITS.lower) | (q > UR5E_LIMITS.upper)
        if np.any(outside):
            j = int(np.argmax(outside))
            raise ValueError(f'{JOINT_NAMES[j]} target {q[j]:.4f} rad is outside '
                             f'[{UR5E_LIMITS.lower[j]:.4f}, {UR5E_LIMITS.upper[j]:.4f}] rad')
        self._q_target = q
        self._qd_target = np.clip(qd, -UR5E_LIMITS.velocity, UR5E_LIMITS.velocity)

    @property
    def rated_force_stop(self) -> bool:
        """The robot's own force limit holds the arm: a pushing contact reached it, and the arm's
        command has not yet come back to where it stands (see RATED_STOP_RESUME_TOLERANCE_RAD)."""
        return self._rated_hold

    def _apply_joint_targets(self, q_rad: np.ndarray | None = None, qd_radps: np.ndarray | None = None) -> None:
        q = self._q_target if q_rad is None else q_rad
        qd = self._qd_target if qd_radps is None else qd_radps
        for j, index in enumerate(self.robot.joint_indices):
            p.setJointMotorControl2(self.robot.body_id, index, p.POSITION_CONTROL,
                                    targetPosition=float(q[j]), targetVelocity=float(qd[j]),
                                    force=float(UR5E_LIMITS.effort[j]), maxVelocity=float(UR5E_LIMITS.velocity[j]),
                                    positionGain=0.3, velocityGain=1.0, physicsClientId=self.client_id)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q rad, qd rad/s, effort N·m) in JOINT_NAMES order; effort is the motor torque applied last substep."""
        states = p.getJointStates(self.robot.body_id, self.robot.joint_indices, physicsClientId=self.client_id)
        return (np.array([s[0] for s in states]), np.array([s[1] for s in states]), np.array([s[3] for s in states]))

    def link_poses(self) -> dict[str, tuple[tuple[float, float, float], tuple[float, float, float, float]]]:
        """World pose (position m, quaternion xyzw) of every robot link frame, by URDF link name."""
        indices = [i for i in self.robot.link_names if i >= 0]
        states = p.getLinkStates(self.robot.body_id, indices, computeForwardKinematics=True,
                                 physicsClientId=self.client_id)
        return {self.robot.link_names[i]: (s[4], s[5]) for i, s in zip(indices, states)}

    def robot_shapes(self) -> tuple[tuple[int, int], ...]:
        """(body id, link index) of the robot links that have a collision shape."""
        return tuple((self.robot.body_id, link) for link in sorted(self.robot.link_names)
                     if p.getCollisionShapeData(self.robot.body_id, link, physicsClientId=self.client_id))

    def static_obstacles(self) -> dict[str, int]:
        """Body ids of the static boxes (table, fence panels, furniture) by name."""
        boxes = self.layout.static_boxes()
        return {box.name: body for box, body in zip(boxes, self._static_ids[1:])}

    def robot_clearances(self, q_rad: np.ndarray, within_m: float,
                         mounted_links: tuple[str, ...] = ('base_link', 'base_link_inertia', 'shoulder_link'),
                         ) -> list[tuple[str, str, float]]:
        """(obstacle, robot link, distance m) for every robot link closer than within_m to a static box
        with the arm at q (negative: penetrating). The links bolted to the table are not checked
        against it. Moves the arm there (teleport): for motion checks, not while simulating."""
        reset_joints(self.robot, np.asarray(q_rad, dtype=float))
        table = self.layout.table.name
        found = []
        for name, body in self.static_obstacles().items():
            for point in p.getClosestPoints(self.robot.body_id, body, within_m, physicsClientId=self.client_id):
                link = self.robot.link_names[point[3]]
                if name == table and link in mounted_links:
                    continue
                found.append((name, link, float(point[8])))
        return found

    def moving_shapes(self) -> tuple[tuple[int, int], ...]:
        """(body id, link index) of every shape that moves: people's regions and robot links with
        a collision shape. Everything else in the world is static (see SafetyScanner)."""
        return tuple((body, -1) for body in self._person_of_body) + self.robot_shapes()

    # -- time ----------------------------------------------------------------------------------

    @property
    def sim_time(self) -> float:
        """Simulated time in s since the world was made."""
        return self._sim_time_s

    def step(self, dt_s: float) -> None:
        """Advance by dt (s), rounded to whole physics substeps (at least one)."""
        if not dt_s > 0:
            raise ValueError(f'step dt must be > 0 s, got {dt_s}')
        self._check_open()
        substeps = max(1, round(dt_s * self.physics_rate_hz))
        self._step_contacts = {}
        # The set-point is interpolated over the substeps (the servo chased a 30 Hz staircase before:
        # its speed swung 0.4-2.4 rad/s within every tick for a steady 1.44 rad/s, and the joint state,
        # sampled at the bottom of the swing, read a third of the true speed).
        start, goal = self._q_from, self._q_target
        for index in range(substeps):
            if not self._rated_hold:    # held by the robot's own force limit: see _touch_people
                self._apply_joint_targets(start + (goal - start) * ((index + 1) / substeps), self._qd_target)
            p.stepSimulation(physicsClientId=self.client_id)
            self._touch_people(1.0 / self.physics_rate_hz)
        self._q_from = self._held_q if self._rated_hold else goal
        self._substeps_done += substeps
        # Counting substeps (not adding floats) keeps sim_time exact over long runs.
        self._sim_time_s = self._substeps_done / self.physics_rate_hz
        self._place_people()

    def _place_people(self) -> None:
        for person, path in zip(self.people, self.paths):
            if path is not None:
                for body_id, position, quaternion in zip(person.body_ids, person.positions_m, person.quaternions_xyzw):
                    self._pose_before[body_id] = (position, quaternion)
                person.apply(path.state_at(self._sim_time_s))
        self._placement_dt_s = self._sim_time_s - self._placed_at_s
        self._placed_at_s = self._sim_time_s

    # -- contacts (see the class docstring) -------------------------------------------------------

    def _robot_point_velocity(self, link: int, point_m: np.ndarray) -> np.ndarray:
        if link < 0:
            return np.zeros(3)      # the base is bolted to the table
        state = p.getLinkState(self.robot.body_id, link, computeLinkVelocity=1, computeForwardKinematics=1,
                               physicsClientId=self.client_id)
        return np.asarray(state[6]) + np.cross(state[7], point_m - np.asarray(state[0]))

    def _region_point_velocity(self, body_id: int, point_m: np.ndarray) -> np.ndarray:
        """The velocity of this point of a person's region over its last placement (rigid motion)."""
        before = self._pose_before.get(body_id)
        if before is None or self._placement_dt_s <= 0.0:
            return np.zeros(3)
        position, quaternion = p.getBasePositionAndOrientation(body_id, physicsClientId=self.client_id)
        rotation_now = np.reshape(p.getMatrixFromQuaternion(quaternion), (3, 3))
        rotation_before = np.reshape(p.getMatrixFromQuaternion(before[1]), (3, 3))
        local = rotation_now.T @ (point_m - np.asarray(position))
        return (point_m - (rotation_before @ local + before[0])) / self._placement_dt_s

    def _touch_people(self, dt_s: float) -> None:
        """After a substep: start, push or end each region-link contact episode; hold or release the arm."""
        deepest: dict[tuple[str, str, str], tuple] = {}
        for body_id, (person, region) in self._person_of_body.items():
            for point in p.getClosestPoints(self.robot.body_id, body_id, 0.0, physicsClientId=self.client_id):
                if point[8] > 0.0:
                    continue
                key = (person, region, self.robot.link_names[point[3]])
                if key not in deepest or point[8] < deepest[key][0][8]:
                    deepest[key] = (point, body_id)
        episodes = {}
        for key, (point, body_id) in deepest.items():
            on_robot = np.asarray(point[5])
            into_person = -np.asarray(point[7])        # the normal on the person points to the robot
            robot_velocity = self._robot_point_velocity(point[3], on_robot)
            episode = self._episodes.get(key)
            robot_into = float(robot_velocity @ into_person)
            if episode is None:
                person_velocity = self._region_point_velocity(body_id, np.asarray(point[6]))
                closing = robot_into - float(person_velocity @ into_person)
                episode = self.contact_model.touch(BODY_MODEL_REGIONS[key[1]], closing, robot_into)
            else:
                episode.push(robot_into, dt_s)
            episodes[key] = episode
            earlier = self._step_contacts.get(key)
            self._step_contacts[key] = Contact(
                key[0], key[1], ISO_TS_15066_REGIONS[key[1]], BODY_MODEL_REGIONS[key[1]], key[2],
                max(episode.force_N, earlier.normal_force_n if earlier else 0.0), tuple(on_robot),
                episode.closing_speed_mps, episode.rated_stop or bool(earlier and earlier.rated_force_stop),
                max(episode.robot_force_N, earlier.robot_force_n if earlier else 0.0))
        self._episodes = episodes
        pushing = any(episode.rated_stop for episode in episodes.values())
        if pushing and not self._rated_hold:
            q, _, _ = self.joint_state()
            self._held_q = q
            self._apply_joint_targets(q, np.zeros(len(JOINT_NAMES)))
            self._rated_hold = True
        elif self._rated_hold and not pushing and \
                float(np.max(np.abs(self._q_target - self._held_q))) <= RATED_STOP_RESUME_TOLERANCE_RAD:
            # Like a cobot's protective stop, it resumes only once the contact is over and the command
            # starts from where the arm stands (the arm re-planned): never a lunge to a stale set-point.
            self._rated_hold = False

    # -- people --------------------------------------------------------------------------------

    def set_person_state(self, index: int, state: PersonState) -> None:
        """Pin person `index` to a state (their path is dropped), e.g. to stage a test."""
        self.paths[index] = None
        self.people[index].apply(state)
        for body_id in self.people[index].body_ids:     # staged, not moved: no closing speed of its own
            self._pose_before.pop(body_id, None)

    def min_person_robot_distance(self, max_distance_m: float = 20.0, person_index: int | None = None) -> float:
        """Smallest distance (m) between any person region (only person `person_index`'s when given)
        and any robot link shape (PyBullet's closest points); negative when they interpenetrate;
        +inf with nobody within max_distance_m."""
        people = self.people if person_index is None else [self.people[person_index]]
        if not people:
            return math.inf
        # Exact queries cost per shape pair, so regions go in order of a lower bound - each region's
        # enclosing capsule (human.region_segments) to the robot's link capsules, which enclose its
        # shapes (test_urdf.py) - and each query reaches only a little past that bound; a region
        # with nothing there goes back in the queue with the query distance as its new bound.
        segments = np.concatenate([person.segments_m for person in people])
        radii = np.concatenate([person.radii_m for person in people])
        bodies = [body for person in people for body in person.body_ids]
        gaps = segment_distances(segments, self._robot_capsules_world()) - radii[:, None] - LINK_CAPSULE_RADII
        queue = [(float(bound), i) for i, bound in enumerate(gaps.min(axis=1))]
        heapq.heapify(queue)
        best = math.inf
        while queue:
            bound, i = heapq.heappop(queue)
            limit = min(best, max_distance_m)
            if bound > limit:
                break
            query_m = min(limit, max(bound + DISTANCE_QUERY_SLACK_M, 0.0))
            points = p.getClosestPoints(bodies[i], self.robot.body_id, query_m, physicsClientId=self.client_id)
            if points:
                best = min(best, min(point[8] for point in points))
            elif query_m < limit:
                heapq.heappush(queue, (query_m, i))
        return best

    def _robot_capsules_world(self) -> np.ndarray:
        """The robot's link capsules (kinematics.link_capsules) in the world, computed once per joint state."""
        q = np.array([s[0] for s in p.getJointStates(self.robot.body_id, self.robot.joint_indices,
                                                      physicsClientId=self.client_id)])
        if self._capsules_cache[0] != q.tobytes():
            c, s = math.cos(self.layout.robot_base_yaw_rad), math.sin(self.layout.robot_base_yaw_rad)
            rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            capsules = link_capsules(q) @ rotation.T + np.asarray(self.layout.robot_base_position_m)
            self._capsules_cache = (q.tobytes(), capsules)
        return self._capsules_cache[1]

    def people_capsules(self) -> tuple[np.ndarray, np.ndarray]:
        """Capsules enclosing the people's body regions, now: segments (K, 2, 3) m and radii (K,) m in
        the world (human.region_segments). For the scanner's beam selection."""
        if not self.people:
            return np.empty((0, 2, 3)), np.empty(0)
        return (np.concatenate([person.segments_m for person in self.people]),
                np.concatenate([person.radii_m for person in self.people]))

    def person_robot_contacts(self) -> list[Contact]:
        """The contacts of the last step(), one per person region and robot link, each with the contact
        model's peak force over the step's substeps (a graze within one step is not missed)."""
        return [self._step_contacts[key] for key in sorted(self._step_contacts)]

    # -- lifetime ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError('this CellWorld is closed')

    def close(self) -> None:
        """Remove everything this world added to its client (the client stays open)."""
        if self._closed or not p.isConnected(physicsClientId=self.client_id):
            self._closed = True
            return
        bodies = [*self._static_ids, *self._marker_ids, self.robot.body_id, *self._person_of_body]
        for body in bodies:
            p.removeBody(body, physicsClientId=self.client_id)
        self._closed = True
