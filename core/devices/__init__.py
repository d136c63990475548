"""The device manager's parts; import them from `core.device`, its public face."""
