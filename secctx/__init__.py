"""secctx-conformance: proves that a cluster enforces Pod Security Context."""
