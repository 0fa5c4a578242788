"""Cost of the arm's command-authority checks per verdict: the ROS graph publisher check and the HMAC.

Run: cd /work/main && .venv/bin/python -m bench.bench_command_authority
"""
import time
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from smartcell.nodes.common import publisher_problem
from smartcell.core.safety.authority import sign_verdict, verify_verdict
rclpy.init()
sup = rclpy.create_node('supervisor')
arm = rclpy.create_node('arm')
sup.create_publisher(DiagnosticArray, 'safety/verdict', 10)
deadline = time.monotonic() + 5
while publisher_problem(arm, 'safety/verdict', 'supervisor') and time.monotonic() < deadline:
    rclpy.spin_once(arm, timeout_sec=0.05)
assert publisher_problem(arm, 'safety/verdict', 'supervisor') is None
n = 5000
t = time.perf_counter()
for _ in range(n):
    publisher_problem(arm, 'safety/verdict', 'supervisor')
graph_us = (time.perf_counter() - t) / n * 1e6
key = bytes(32)
sig = sign_verdict(key, stamp_ns=1, sequence=2, speed_scale=0.5, state='normal', motion='motion-1')
t = time.perf_counter()
for _ in range(n):
    verify_verdict(key, stamp_ns=1, sequence=2, speed_scale=0.5, state='normal', motion='motion-1', signature=sig)
verify_us = (time.perf_counter() - t) / n * 1e6
print(f'graph check {graph_us:.1f} us/verdict, HMAC verify {verify_us:.1f} us/verdict')
rclpy.shutdown()
