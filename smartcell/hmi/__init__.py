"""The operator station in the browser: pure view/auth logic, the aiohttp server and the static page.

ROS-free: the `hmi` node (smartcell.nodes.hmi) feeds `CellView` from topics and carries the
actions the page asks for to the cell's services; everything here runs and is tested without rclpy.
"""
