"""The arm: kinematics, named motions, trajectory execution."""
