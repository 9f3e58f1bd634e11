"""Fixtures that start real services (influxd, mosquitto) on free loopback ports."""
