"""The field side: MQTT protocol, gateway, device twins, site simulator, embedded broker."""
