"""Errors of the environment or of the user's input: one line with cause and fix.

The error types and the refused-permission parser live here, below every module
that raises them; the boundary that turns them into the INFRASTRUCTURE line is
secctx.run.boundary, above them (so no import circle).

They end set-up with that line, prefixed INFRASTRUCTURE (the report's
category), and no traceback. A permission the API server refuses (RBAC) ends
the whole run with that line, wherever it is refused: set-up, a test, tear-down.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass

import pytest

from . import paths
from .categories import infrastructure as infrastructure_line

# What the run says when a RunStopped ended it (session.shouldfail; under pytest-xdist the
# controller's shouldstop, secctx.report.summary).
STOPPED = "run stopped at the first INFRASTRUCTURE error (see above)"


class RunStopped(pytest.fail.Exception):
    """An INFRASTRUCTURE line after which every later test would only repeat it
    (set-up failed, a permission is missing): the plugin ends the run at the
    first one, as -x would."""
    # As pytest does for Failed: reports say "RunStopped: ...", no module path.
    __module__ = "builtins"


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
