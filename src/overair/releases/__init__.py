"""Apps, deployments and releases: models, service, management API and the device-side cache."""
