"""What the supervisor asks the ROS graph about its inputs; the judgements are in smartcell.core.

Who publishes the people data (core.safety.graph.publisher_doubt) and which speed fraction and
scale ramp-down the arm node declares (core.cell.inputs.speed_fraction_refusal, ramp_down_refusal).
"""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node

from smartcell.core.cell.inputs import ramp_down_refusal, speed_fraction_refusal
from smartcell.core.safety.graph import publisher_doubt


def people_publisher_doubt(node: Node, topic: str, expected_node: str) -> str:
    """'' when only `expected_node` (in this node's namespace) publishes `topic`, else why not; '' when
    no publisher is expected."""
    if not expected_node:
        return ''
    infos = node.get_publishers_info_by_topic(node.resolve_topic_name(topic))
    return publisher_doubt(topic, ((i.node_name, i.node_namespace) for i in infos), expected_node,
                           node.get_namespace())


class ArmConfigCheck:
    """Asks the arm node for its max_joint_speed_fraction and scale_ramp_down_per_s (its get_parameters
    service), one call at a time."""

    NAMES = ('max_joint_speed_fraction', 'scale_ramp_down_per_s')

    def __init__(self, node: Node, arm_node: str, cell_fraction: float, ramp_down_per_s: float) -> None:
        self._client = node.create_client(GetParameters, f'{arm_node}/get_parameters')
        self._arm_node, self._cell_fraction, self._ramp_down_per_s = arm_node, cell_fraction, ramp_down_per_s
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
            values = list(future.result().values) if future.result() is not None else []
            declared = [value.double_value if value.type == ParameterType.PARAMETER_DOUBLE else None
                        for value in values] if len(values) == len(self.NAMES) else [None] * len(self.NAMES)
            refusal = speed_fraction_refusal(declared[0], self._cell_fraction, self._arm_node) or \
                ramp_down_refusal(declared[1], self._ramp_down_per_s, self._arm_node)
        if self._client.service_is_ready():
            self._future = self._client.call_async(GetParameters.Request(names=list(self.NAMES)))
        return refusal
