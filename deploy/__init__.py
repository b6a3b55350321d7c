"""The RBAC the suite needs on an existing cluster; installed as `secctx.deploy` (data only)."""
