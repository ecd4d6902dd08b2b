"""What an operator probes and scrapes: liveness, readiness and the Prometheus metrics."""
