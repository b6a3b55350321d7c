"""Where the suite's own data is, in a checkout and in an installed package alike."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

FIXTURES = Path(str(resources.files("secctx.fixtures")))  # fixtures/ in the repository
SUITES = Path(str(resources.files("secctx.suites")))      # suites/ in the repository
CASES = FIXTURES / "cases"
MANIFESTS = FIXTURES / "manifests"
DEPLOY = Path(str(resources.files("secctx.deploy")))      # deploy/ in the repository
RBAC_MANIFEST = DEPLOY / "rbac.yaml"
# How messages name it: its place in the repository (`python -m secctx rbac-manifest`
# prints it for an installed suite).
RBAC_MANIFEST_NAME = "deploy/rbac.yaml"
