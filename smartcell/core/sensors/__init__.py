"""Edge analytics of the smart sensors: people tracking, vibration, energy, wearable."""
