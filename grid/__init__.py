"""Domain core: site config, clock, telemetry schema, stores and the CLI entry point."""
