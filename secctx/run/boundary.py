"""The boundary between the suite's set-up and its tests: an error a user can fix
(cli's, the cluster's, the API client's, the pull check's, a refused permission)
becomes one `INFRASTRUCTURE: <cause and fix>` line that ends the run.

Above the modules whose errors it names (cli, kube, pullcheck, cluster), so they
need not import it; the error types it raises are secctx.core.errors'.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from .. import report
from ..cli import USER_ERRORS
from ..cluster import existing
from ..core.categories import infrastructure as infrastructure_line
from ..core.errors import RBAC_MANIFEST, PermissionMissing, RunStopped, api_message, denial
from ..kube import Terminal, WaitTimeout
from ..kube.pullcheck import ImageUnavailable
from . import options as optionnames


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    return (*USER_ERRORS, ConfigException, HTTPError, Terminal, WaitTimeout, ImageUnavailable)


@contextlib.contextmanager
def infrastructure(results: Path | None, what: str = ""):
    """Turn a user-fixable error into `INFRASTRUCTURE: <cause and fix>`, raised as
    RunStopped (a refused permission as PermissionMissing).

    Raised from the session fixture, the first test that needs the cluster
    errors with that line and the run ends there (Allure files it under
    "Infrastructure"; categories.json is written here too: set-up, which
    writes it, did not get that far)."""
    prefix = infrastructure_line(f"{what}{': ' if what else ''}")
    failure = RunStopped
    try:
        yield
        return
    except _infrastructure_errors() as err:
        if type(err).__module__.startswith("urllib3"):  # the cluster went away mid-set-up
            message = (f"cannot reach the API server ({existing.short_reason(err)}); check "
                       "--kubeconfig/--kube-context and that the cluster is up")
        else:
            message = str(err)
    except Exception as err:
        refused = denial(err)
        if refused:
            message, failure = refused.message(), PermissionMissing
        elif isinstance(err, ApiException) and err.status in (401, 403):
            message = (f"the API server refused a request ({err.status} {err.reason}: "
                       f"{api_message(err)}); check the credentials of --kubeconfig and the "
                       f"RBAC the suite needs ({RBAC_MANIFEST})")
        else:
            raise
    if results:
        report.write_results_files(results, {"set-up": "failed (category Infrastructure)"})
    # `from None`: the message says it all; no chained traceback.
    raise failure(prefix + optionnames.for_pytest(message), pytrace=False) from None
