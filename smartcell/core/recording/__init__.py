"""Recording a run as rosbag2-compatible MCAP and comparing a replay with it (ROS-free helpers)."""
