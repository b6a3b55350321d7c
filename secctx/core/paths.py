"""Where the suite's own data is, in a checkout and in an installed package alike.

The one home for data locations: every file the code reads from the package is
found here through importlib.resources (never relative to a checkout), so a
wheel installed anywhere finds what it ships. Standard library only.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def _package(name: str) -> Path:
    return Path(str(resources.files(name)))


# secctx itself, the parent of this package (a copy imported under another name reads its own)
PACKAGE = _package(__package__.rpartition(".")[0])
CASE_SCHEMA = PACKAGE / "schema" / "case.schema.json"
OBSERVATIONS_SCHEMA = PACKAGE / "schema" / "observations.schema.json"
ALLURE_PINS = PACKAGE / "allure"  # package.json, package-lock.json of the pinned Allure 3 CLI
CAPSHIM_SOURCE = PACKAGE / "offline" / "capshim"
NODE_FILES = PACKAGE / "offline" / "node"   # files the offline node image gets
FIXTURES = _package("secctx.fixtures")  # fixtures/ in the repository
SUITES = _package("secctx.suites")      # suites/ in the repository
CASES = FIXTURES / "cases"
CASES_README = CASES / "README.md"
MANIFESTS = FIXTURES / "manifests"
DEPLOY = _package("secctx.deploy")      # deploy/ in the repository
IMAGE_SOURCES = _package("secctx.image_sources")  # images/ in the repository
RBAC_MANIFEST = DEPLOY / "rbac.yaml"
# How messages name it: its place in the repository (`python -m secctx rbac-manifest`
# prints it for an installed suite).
RBAC_MANIFEST_NAME = "deploy/rbac.yaml"
