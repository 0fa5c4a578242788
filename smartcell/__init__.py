"""smartcell: a ROS 2 controller for a collaborative-robot cell."""

__version__ = '0.1.0'
