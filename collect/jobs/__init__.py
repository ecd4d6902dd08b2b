"""The job engine: states, control services, the runner, dispatch and the sweeper."""
