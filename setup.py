"""Package discovery; everything else is in pyproject.toml.

Every package under secctx/ is found, so a new subpackage ships without an edit
here. The repository's top-level directories below keep their place and ship
inside the package, where the code finds them with importlib.resources
(secctx/core/paths.py). The data files of each are listed in pyproject.toml's
[tool.setuptools.package-data]; tests/integration/test_wheel.py checks that
every file git tracks in them is in the wheel.
"""
from setuptools import find_packages, setup

SHIPPED_DIRECTORIES = {
    "secctx.suites": "suites",
    "secctx.fixtures": "fixtures",
    "secctx.deploy": "deploy",
    "secctx.image_sources": "images",
}

setup(packages=find_packages(include=["secctx", "secctx.*"]) + list(SHIPPED_DIRECTORIES),
      package_dir=SHIPPED_DIRECTORIES)
