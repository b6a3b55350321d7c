"""The pytest plugin and what a run is made of: options, session, scheduler,
runner (one case from manifest to verdict), signals, the error boundary."""
