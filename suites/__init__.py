"""The conformance suite; installed as `secctx.suites`, run by the `secctx` pytest plugin."""
