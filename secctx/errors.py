"""Errors of the environment or of the user's input: one line with cause and fix.

They end set-up with that line, prefixed INFRASTRUCTURE (the report's
category), and no traceback.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from . import report
from .categories import infrastructure as infrastructure_line


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    from .cli import USER_ERRORS
    from .kube import Terminal, WaitTimeout
    from .pullcheck import ImageUnavailable
    return (*USER_ERRORS, ConfigException, HTTPError, Terminal, WaitTimeout, ImageUnavailable)


@contextlib.contextmanager
def infrastructure(results: Path | None, what: str = "", session=None):
    """Turn a user-fixable error into `INFRASTRUCTURE: <cause and fix>`.

    Raised from the session fixture, the first test that needs the cluster
    errors with that line (Allure files it under "Infrastructure";
    categories.json is written here too: set-up, which writes it, did not get
    that far). Given pytest's `session`, the run then ends there, once, as
    `-x` would end it: every later test would only repeat the same line."""
    from kubernetes.client.rest import ApiException

    from .cluster import existing
    prefix = infrastructure_line(f"{what}{': ' if what else ''}")
    try:
        yield
        return
    except _infrastructure_errors() as err:
        if type(err).__module__.startswith("urllib3"):  # the cluster went away mid-set-up
            message = (f"cannot reach the API server ({existing.short_reason(err)}); check "
                       "--kubeconfig/--kube-context and that the cluster is up")
        else:
            message = str(err)
    except ApiException as err:
        if err.status not in (401, 403):
            raise
        message = (f"the API server refused a request ({err.status} {err.reason}: "
                   f"{api_message(err)}); check the credentials of --kubeconfig and the RBAC "
                   "the suite needs (README, 'Running against an existing cluster')")
    if results:
        report.write_results_files(results, {"set-up": "failed (category Infrastructure)"})
    if session is not None:
        session.shouldfail = prefix + message
    # `from None`: the message says it all; no chained traceback.
    raise pytest.fail.Exception(prefix + message, pytrace=False) from None


def api_message(err) -> str:
    try:
        return json.loads(err.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        return str(err.body or "")[:300]
