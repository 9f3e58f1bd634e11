pytest_plugins = ["tests.services.chromium", "tests.services.influxd", "tests.services.mosquitto"]
