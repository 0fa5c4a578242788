"""Thin rclpy adapters: one executable per node; callbacks convert, call the core, publish."""
