"""Loading the UR5e URDF into PyBullet and naming its joints and links."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as p

from smartcell.core.robot.kinematics import JOINT_NAMES

URDF_FILE_NAME = 'ur5e.urdf'
# Frame-only links (no <inertial> in the URDF, as usual for ROS frames). PyBullet would give each
# of them 1 kg (three of them at the wrist); they get a negligible mass instead.
FRAME_LINKS = ('base', 'flange', 'tool0', 'gripper_tcp')
FRAME_LINK_MASS_KG = 1e-4
FRAME_LINK_INERTIA_KGM2 = 1e-9


class UrdfMissing(FileNotFoundError):
    """The robot description file is not where it was looked for; the message names the path."""


def default_urdf_path() -> Path:
    """The installed share/smartcell/urdf/ur5e.urdf, else the one of this source checkout."""
    checkout = Path(__file__).resolve().parents[2] / 'urdf' / URDF_FILE_NAME
    try:
        from smartcell.share import share_file
        return share_file('urdf', URDF_FILE_NAME)
    except (ImportError, OSError):
        # Not installed (or no ament index, e.g. AMENT_PREFIX_PATH unset): use the source checkout.
        pass
    if checkout.is_file():
        return checkout
    raise UrdfMissing(f'robot URDF not found: not installed in share/smartcell/urdf and not at {checkout}')


@dataclass(frozen=True)
class RobotHandle:
    """A loaded robot: its body id and the PyBullet indices of the named joints and links."""

    client_id: int
    body_id: int
    joint_indices: tuple[int, ...]          # PyBullet joint index of each of JOINT_NAMES
    link_names: dict[int, str]              # PyBullet link index (-1 = base) -> URDF link name

    def link_index(self, name: str) -> int:
        for index, link in self.link_names.items():
            if link == name:
                return index
        raise KeyError(f'robot has no link {name!r}; links: {sorted(self.link_names.values())}')


def load_robot(client_id: int, urdf_path: str | Path, base_position_m: tuple[float, float, float] = (0, 0, 0),
               base_yaw_rad: float = 0.0) -> RobotHandle:
    """Load the arm with a fixed base_link at the given world pose; joints at zero."""
    urdf_path = Path(urdf_path)
    if not urdf_path.is_file():
        raise UrdfMissing(f'robot URDF not found: {urdf_path}')
    body = p.loadURDF(str(urdf_path), basePosition=base_position_m,
                      baseOrientation=p.getQuaternionFromEuler((0.0, 0.0, base_yaw_rad)),
                      useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client_id)
    if body < 0:
        raise ValueError(f'PyBullet could not load the URDF {urdf_path}')
    by_joint_name, link_names = {}, {-1: p.getBodyInfo(body, physicsClientId=client_id)[0].decode()}
    for index in range(p.getNumJoints(body, physicsClientId=client_id)):
        info = p.getJointInfo(body, index, physicsClientId=client_id)
        by_joint_name[info[1].decode()] = index
        link_names[index] = info[12].decode()
    missing = [name for name in JOINT_NAMES if name not in by_joint_name]
    if missing:
        raise ValueError(f'URDF {urdf_path} lacks joint(s) {missing}; expected {list(JOINT_NAMES)}')
    for index in link_names:
        if index >= 0 and link_names[index] in FRAME_LINKS:
            p.changeDynamics(body, index, mass=FRAME_LINK_MASS_KG,
                             localInertiaDiagonal=[FRAME_LINK_INERTIA_KGM2] * 3, physicsClientId=client_id)
    return RobotHandle(client_id, body, tuple(by_joint_name[name] for name in JOINT_NAMES), link_names)


def urdf_joint_limits(handle: RobotHandle) -> dict[str, np.ndarray]:
    """lower, upper (rad), velocity (rad/s), effort (N·m) as read back from PyBullet."""
    infos = [p.getJointInfo(handle.body_id, j, physicsClientId=handle.client_id) for j in handle.joint_indices]
    return {'lower': np.array([i[8] for i in infos]), 'upper': np.array([i[9] for i in infos]),
            'effort': np.array([i[10] for i in infos]), 'velocity': np.array([i[11] for i in infos])}


def reset_joints(handle: RobotHandle, q_rad: np.ndarray) -> None:
    """Teleport the joints (no dynamics), e.g. to start a run or a test at a given pose."""
    q_rad = np.asarray(q_rad, dtype=float)
    if q_rad.shape != (len(JOINT_NAMES),):
        raise ValueError(f'need {len(JOINT_NAMES)} joint positions, got shape {q_rad.shape}')
    for index, value in zip(handle.joint_indices, q_rad):
        p.resetJointState(handle.body_id, index, float(value), 0.0, physicsClientId=handle.client_id)

