pytest_plugins = ["tests.services.influxd", "tests.services.mosquitto"]
