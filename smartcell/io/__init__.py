"""Transports and storage (MQTT, OPC UA, SQLite outbox) behind small interfaces."""
