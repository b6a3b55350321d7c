"""Errors of the environment or of the user's input: one line with cause and fix.

They end set-up with that line, prefixed INFRASTRUCTURE (the report's
category), and no traceback. A permission the API server refuses (RBAC) ends
the whole run with that line, wherever it is refused: set-up, a test, tear-down.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import paths, report
from .categories import infrastructure as infrastructure_line


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    from .cli import USER_ERRORS
    from .kube import Terminal, WaitTimeout
    from .pullcheck import ImageUnavailable
    return (*USER_ERRORS, ConfigException, HTTPError, Terminal, WaitTimeout, ImageUnavailable)


# What the run says when a RunStopped ended it (session.shouldfail; under pytest-xdist the
# controller's shouldstop, secctx.summary).
STOPPED = "run stopped at the first INFRASTRUCTURE error (see above)"


class RunStopped(pytest.fail.Exception):
    """An INFRASTRUCTURE line after which every later test would only repeat it
    (set-up failed, a permission is missing): the plugin ends the run at the
    first one, as -x would."""
    # As pytest does for Failed: reports say "RunStopped: ...", no module path.
    __module__ = "builtins"


@contextlib.contextmanager
def infrastructure(results: Path | None, what: str = ""):
    """Turn a user-fixable error into `INFRASTRUCTURE: <cause and fix>`, raised as
    RunStopped (a refused permission as PermissionMissing).

    Raised from the session fixture, the first test that needs the cluster
    errors with that line and the run ends there (Allure files it under
    "Infrastructure"; categories.json is written here too: set-up, which
    writes it, did not get that far)."""
    from kubernetes.client.rest import ApiException

    from .cluster import existing
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
    raise failure(prefix + message, pytrace=False) from None


def api_message(err) -> str:
    try:
        return json.loads(err.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        return str(err.body or "")[:300]


# -- permissions the API server refuses ------------------------------------------

RBAC_MANIFEST = paths.RBAC_MANIFEST_NAME

# The authorizer's refusal (k8s.io/apiserver, responsewriters.forbiddenMessage).
_REFUSAL = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) (?:resource "(?P<resource>[^"]+)" in API group '
    r'"(?P<group>[^"]*)"(?: in the namespace "(?P<namespace>[^"]+)"| at the cluster scope)'
    r'|path "(?P<path>[^"]+)")')


class PermissionMissing(RunStopped):
    """A refused permission: one INFRASTRUCTURE line that ends the run, since every
    later test would be refused the same."""
    __module__ = "builtins"


@dataclass(frozen=True)
class Denial:
    """What the API server's authorizer refused."""
    verb: str
    resource: str  # with its subresource (pods/exec), or a non-resource path
    group: str = ""
    namespace: str | None = None
    user: str = ""
    why: str = ""  # when the server's message does not say (the refused request does)

    def message(self) -> str:
        group = f" in API group {self.group}" if self.group else ""
        where = f" in namespace {self.namespace}" if self.namespace else " at the cluster scope"
        why = f" ({self.why})" if self.why else ""
        return (f"permission missing: {self.user or 'the user of --kubeconfig'} cannot "
                f"{self.verb} {self.resource}{group}{where}{why}; grant it: see {RBAC_MANIFEST}")


def denial(err: BaseException | None) -> Denial | None:
    """The authorizer's refusal behind `err` (an ApiException 403, also inside a
    FailToCreateError or chained), or None. Admission (Pod Security, webhooks)
    refuses with 403 too: those are results the suite judges, not denials."""
    from kubernetes.client.rest import ApiException
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ApiException) and e.status == 403:
            found = _parse_refusal(api_message(e), getattr(e, "refused_request", None))
            if found:
                return found
        todo += [*getattr(e, "api_exceptions", []), e.__cause__, e.__context__]
    return None


def _parse_refusal(message: str, request: Denial | None) -> Denial | None:
    m = _REFUSAL.search(message)
    if m:
        return Denial(m["verb"], m["resource"] or m["path"], m["group"] or "", m["namespace"],
                      m["user"])
    # An authorizer that gives no reason leaves "<what> is forbidden: " and nothing more.
    if request and message.rstrip().endswith("is forbidden:"):
        return request
    return None


@contextlib.contextmanager
def permissions():
    """Turn a refused permission raised inside into PermissionMissing (its one line)."""
    try:
        yield
    except Exception as err:
        refused = denial(err)
        if refused is None:
            raise
        raise PermissionMissing(infrastructure_line(refused.message()), pytrace=False) from None
