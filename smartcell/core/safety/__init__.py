"""Safety math and monitoring: SSM, PFL, stopping data, the monitor, the verdict, evidence."""
