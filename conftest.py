"""This repository's own test wiring.

The suite itself is a pytest plugin, `secctx/run/plugin.py`, loaded through its
`pytest11` entry point wherever the package is installed (here: the editable
.venv); its tests are in `suites/`. What only this repository's runs need is
here: pytester, for the tests of the plugin's own runs in `tests/`.
"""
pytest_plugins = ["pytester"]
