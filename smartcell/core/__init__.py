"""ROS-free core: safety math, state machines, scheduling, analytics, MES records.

Only the standard library and numpy (scipy where signal processing needs it).
Nothing here may import rclpy or pybullet; test/unit/test_core_isolation.py keeps it so.
"""
