"""Start a smartcell cell: `ros2 launch smartcell cell.launch.py [sim:=true|false] [gui:=...] ...`

The node set comes from smartcell.topology (the same list `smartcell sim` starts). With sim:=true
the PyBullet twin provides the robot, the person, the scanner and /clock in real time; with
sim:=false the arm node bridges to the vendor's ros2_control driver and the scanner node reads
the real safety scanner's `scan` topic.

Parameter overrides: `node.name:=value` (e.g. `mes_bridge.mqtt_port:=1884`) is checked against the
node's parameter specs and written to a params file read after the cell file, so it wins over the
file's `/**/node` section; any other undeclared argument is refused with the reason (ros2 launch
would ignore it silently). With `namespace:=cell_b` the MES bridge derives its cell id, outbox,
OPC UA port and MQTT client id from the namespace (mes_bridge.namespace_derived), the supervisor names
its journal and order store after it, and with sim:=true the nodes' `/clock` is remapped into it (each
cell runs on its own twin's time).

The nodes run with smartcell's Fast DDS profile (config/fastdds_profile.xml: a 4 s participant lease,
so a killed node leaves the graph within 4 s) unless FASTRTPS_DEFAULT_PROFILES_FILE or
FASTDDS_DEFAULT_PROFILES_FILE already names one.
"""
import os
import tempfile
from pathlib import Path

import yaml
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable, SetLaunchConfiguration
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from ament_index_python import has_resource
from ament_index_python.packages import get_package_share_directory

from smartcell.core.params import load_cell_config
from smartcell.tools.cell_processes import (DDS_PROFILE_VARIABLES, launch_overrides, merge_overrides,
                                           overrides_document, with_dds_profile)
from smartcell.topology import CELL_NODES, param_registry

SHARE = get_package_share_directory('smartcell')
# On hardware the real robot_state_publisher (where the ROS installation has it) publishes the
# links and /robot_description; the robot_state node then keeps only the layout and people frames.
ROBOT_STATE_PUBLISHER = has_resource('packages', 'robot_state_publisher')


def validate_config(context):
    """Refuse a bad parameter file before any node starts (nothing starts half-way)."""
    load_cell_config(LaunchConfiguration('config').perform(context), param_registry())
    return []


def dds_profile(context):
    """smartcell's Fast DDS profile for the nodes started here, unless the environment names one."""
    env = with_dds_profile({name: os.environ.get(name, '') for name in DDS_PROFILE_VARIABLES})
    return [SetEnvironmentVariable(name, value) for name, value in env.items() if value != os.environ.get(name, '')]


DECLARED = ('sim', 'gui', 'namespace', 'config', 'record', 'sensors', 'mes', 'hmi')
BOOLEAN = ['true', 'false']
# Optional node groups that run unless switched off (`sensors:=false` is `smartcell sim --without sensors`).
OPTIONAL_GROUPS = {'sensors': 'the smart sensors: vibration, energy, wearable',
                   'mes': 'the MES bridge (OPC UA, MQTT)', 'hmi': 'the operator station in the browser'}


def sim_overrides(spec, gui):
    """What sim:=true changes for a node (smartcell.topology.NodeSpec, the one source; smartcell sim
    adds lockstep on top)."""
    return {**spec.sim_overrides, **({'gui': gui} if spec.name == 'twin' else {})}


def params_key(name, in_sim):
    return f'_smartcell_params_{name}_{"sim" if in_sim else "hw"}'


def write_overrides(context):
    """Per node and mode, a params file with the mode's values and the command line's node.name:=value."""
    user = launch_overrides(context.launch_configurations, DECLARED, param_registry())
    gui = yaml.safe_load(LaunchConfiguration('gui').perform(context)) is True
    folder = Path(tempfile.mkdtemp(prefix='smartcell-launch-'))
    actions = []
    for spec in CELL_NODES:
        for in_sim, base in ((True, sim_overrides(spec, gui)), (False, dict(spec.hardware_overrides))):
            values = merge_overrides({spec.name: base}, [o for o in user if o[0] == spec.name])[spec.name]
            path = folder / f'{params_key(spec.name, in_sim)}.yaml'
            path.write_text(yaml.safe_dump(overrides_document(spec.name, values)))
            actions.append(SetLaunchConfiguration(params_key(spec.name, in_sim), str(path)))
    return actions


def generate_launch_description():
    sim = LaunchConfiguration('sim')
    entities = [
        DeclareLaunchArgument('sim', default_value='true', choices=BOOLEAN,
                              description='true: PyBullet twin in real time; false: cell hardware (vendor driver)'),
        DeclareLaunchArgument('gui', default_value='false', choices=BOOLEAN,
                              description='show the PyBullet GUI (sim only)'),
        *[DeclareLaunchArgument(group, default_value='true', choices=BOOLEAN, description=f'start {what}')
          for group, what in OPTIONAL_GROUPS.items()],
        DeclareLaunchArgument('namespace', default_value='', description='ROS namespace of every cell node'),
        DeclareLaunchArgument('config', default_value=f'{SHARE}/config/cell.yaml',
                              description='cell parameter file (validated before anything starts)'),
        DeclareLaunchArgument('record', default_value='false',
                              description='true: the recorder writes every topic to a rosbag2-compatible MCAP '
                                          '(recorder.output_file; default <ROS_HOME>/smartcell/recordings/)'),
        OpaqueFunction(function=validate_config),
        OpaqueFunction(function=dds_profile),
        OpaqueFunction(function=write_overrides),
    ]
    for spec in CELL_NODES:
        # UnlessCondition subclasses IfCondition: branch on an explicit flag, never on isinstance.
        for in_sim, condition in ((True, IfCondition(sim)), (False, UnlessCondition(sim))):
            if not spec.runs(sim=in_sim):
                continue
            if spec.group == 'record' or spec.group in OPTIONAL_GROUPS:
                # record: only on request; sensors, mes, hmi: unless switched off; in either mode.
                switch = LaunchConfiguration('record' if spec.group == 'record' else spec.group)
                condition = IfCondition(PythonExpression(
                    ["'", switch, "'.lower() in ('true', '1') and '", sim, "'.lower() "
                     f"{'in' if in_sim else 'not in'} ('true', '1')"]))
            entities.append(Node(
                package='smartcell', executable=spec.name, name=spec.name,
                namespace=LaunchConfiguration('namespace'),
                # sim: each cell's twin is its clock; /clock is global, so two namespaced cells on one domain
                # would run on each other's time. 'clock' resolves to /<namespace>/clock (/clock at the root).
                remappings=[('/clock', 'clock')] if in_sim else [],
                parameters=[LaunchConfiguration('config'), LaunchConfiguration(params_key(spec.name, in_sim))],
                output='screen', emulate_tty=True, condition=condition,
                # the MES bridge flushes its outbox and closes its servers on shutdown
                sigterm_timeout=f'{spec.shutdown_timeout_s:g}'))
    if ROBOT_STATE_PUBLISHER:
        entities.append(Node(
            package='robot_state_publisher', executable='robot_state_publisher', name='robot_state_publisher',
            namespace=LaunchConfiguration('namespace'), output='screen', condition=UnlessCondition(sim),
            parameters=[{'robot_description': (Path(SHARE) / 'urdf' / 'ur5e.urdf').read_text()}]))
    return LaunchDescription(entities)
