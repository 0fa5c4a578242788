"""Start a smartcell cell: `ros2 launch smartcell cell.launch.py [sim:=true|false] [gui:=...] ...`

The node set comes from smartcell.topology (the same list `smartcell sim` starts). With sim:=true
the PyBullet twin provides the robot, the person, the scanner and /clock in real time; with
sim:=false the arm node bridges to the vendor's ros2_control driver and the scanner node reads
the real safety scanner's `scan` topic.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ament_index_python.packages import get_package_share_directory

from smartcell.core.params import load_cell_config
from smartcell.topology import CELL_NODES, param_registry

SHARE = get_package_share_directory('smartcell')


def validate_config(context):
    """Refuse a bad parameter file before any node starts (nothing starts half-way)."""
    load_cell_config(LaunchConfiguration('config').perform(context), param_registry())
    return []


def sim_overrides(name):
    """What sim:=true changes for a node; mirrors smartcell.tools.sim without lockstep (real time)."""
    if name == 'twin':
        return {'gui': LaunchConfiguration('gui')}
    if name == 'arm':
        return {'use_sim_time': True, 'backend': 'sim'}
    return {'use_sim_time': True}


def hardware_overrides(name):
    return {'backend': 'ros2_control'} if name == 'arm' else {}


def generate_launch_description():
    sim = LaunchConfiguration('sim')
    entities = [
        DeclareLaunchArgument('sim', default_value='true',
                              description='true: PyBullet twin in real time; false: cell hardware (vendor driver)'),
        DeclareLaunchArgument('gui', default_value='false', description='show the PyBullet GUI (sim only)'),
        DeclareLaunchArgument('namespace', default_value='', description='ROS namespace of every cell node'),
        DeclareLaunchArgument('config', default_value=f'{SHARE}/config/cell.yaml',
                              description='cell parameter file (validated before anything starts)'),
        OpaqueFunction(function=validate_config),
    ]
    for spec in CELL_NODES:
        # UnlessCondition subclasses IfCondition: branch on an explicit flag, never on isinstance.
        for in_sim, condition, overrides in ((True, IfCondition(sim), sim_overrides(spec.name)),
                                             (False, UnlessCondition(sim), hardware_overrides(spec.name))):
            if not spec.runs(sim=in_sim):
                continue
            entities.append(Node(
                package='smartcell', executable=spec.name, name=spec.name,
                namespace=LaunchConfiguration('namespace'),
                parameters=[LaunchConfiguration('config'), overrides],
                output='screen', emulate_tty=True, condition=condition,
                # the MES bridge flushes its outbox and closes its servers on shutdown
                sigterm_timeout='15' if spec.name == 'mes_bridge' else '5'))
    return LaunchDescription(entities)
