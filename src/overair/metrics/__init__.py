"""Release metrics: device reports aggregated per deployment, label and hour, active devices, Prometheus."""
