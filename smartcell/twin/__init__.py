"""PyBullet digital twin of the cell. Every function takes an explicit physics client id."""
