"""The cell: its state machine and the controller that composes it."""
