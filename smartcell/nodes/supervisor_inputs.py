"""What the supervisor asks the ROS graph about its inputs; the judgements are in smartcell.core.

Who publishes the people data (core.safety.graph.publisher_doubt) and which speed fraction the arm
node declares (core.cell.inputs.speed_fraction_refusal).
"""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node

from smartcell.core.cell.inputs import speed_fraction_refusal
from smartcell.core.safety.graph import publisher_doubt


def people_publisher_doubt(node: Node, topic: str, expected_node: str) -> str:
    """'' when only `expected_node` (in this node's namespace) publishes `topic`, else why not; '' when
    no publisher is expected."""
    if not expected_node:
        return ''
    infos = node.get_publishers_info_by_topic(node.resolve_topic_name(topic))
    return publisher_doubt(topic, ((i.node_name, i.node_namespace) for i in infos), expected_node,
                           node.get_namespace())


class ArmSpeedFractionCheck:
    """Asks the arm node for its max_joint_speed_fraction (its get_parameters service), one call at a time."""

    def __init__(self, node: Node, arm_node: str, cell_fraction: float) -> None:
        self._client = node.create_client(GetParameters, f'{arm_node}/get_parameters')
        self._arm_node, self._cell_fraction = arm_node, cell_fraction
        self._future: Any = None

    def poll(self) -> str | None:
        """The refusal of the answer that came in since the last poll ('' when the arm agrees), or None
        when none came in; asks again when the arm's service is there."""
        future = self._future
        if future is not None and not future.done():
            return None
        refusal = None
        if future is not None:
            self._future = None
            values = future.result().values if future.result() is not None else []
            declared = values[0].double_value \
                if len(values) == 1 and values[0].type == ParameterType.PARAMETER_DOUBLE else None
            refusal = speed_fraction_refusal(declared, self._cell_fraction, self._arm_node)
        if self._client.service_is_ready():
            self._future = self._client.call_async(GetParameters.Request(names=['max_joint_speed_fraction']))
        return refusal
