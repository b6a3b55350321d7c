"""An existing cluster given by a kubeconfig: checks that fail fast and clearly.

The suite creates nothing there; before it starts, the kubeconfig must name a
context with a server, and the API server must answer (one bounded request).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..core import timeouts
from .kind import ClusterError

_KUBECONFIG_FIX = "check --kubeconfig/--kube-context"


def check_kubeconfig(path: Path, context: str | None) -> str:
    """The API server URL of the kubeconfig's context, or a ClusterError saying
    what is wrong with the file (cause and fix) instead of a client traceback."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ClusterError(f"cannot read kubeconfig {path} ({err.strerror or err}); "
                           f"{_KUBECONFIG_FIX}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ClusterError(f"kubeconfig {path} is not valid YAML{where} ({problem}); "
                           f"{_KUBECONFIG_FIX}") from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise ClusterError(f"kubeconfig {path} has no contexts list: it is not a kubeconfig "
                           f"(apiVersion: v1, kind: Config); {_KUBECONFIG_FIX}")
    contexts = {c.get("name"): c.get("context") or {} for c in data["contexts"]
                if isinstance(c, dict)}
    known = ", ".join(str(n) for n in contexts) or "none"
    name = context or data.get("current-context")
    if not name:
        raise ClusterError(f"kubeconfig {path} sets no current-context; pass --kube-context "
                           f"(contexts in it: {known})")
    if name not in contexts:
        raise ClusterError(f"context {name!r} is not in kubeconfig {path} (contexts in it: "
                           f"{known}); {_KUBECONFIG_FIX}")
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or []
                if isinstance(c, dict)}
    cluster = contexts[name].get("cluster") if isinstance(contexts[name], dict) else None
    server = (clusters.get(cluster) or {}).get("server")
    if not server:
        raise ClusterError(f"context {name!r} of kubeconfig {path} names cluster {cluster!r}, "
                           f"which has no server URL there; {_KUBECONFIG_FIX}")
    return server


def preflight_api(path: Path, context: str | None, server: str, timeout: float = timeouts.API_PREFLIGHT) -> str:
    """One bounded request (GET /version, no retries): the API server answers and
    accepts the credentials. Returns its gitVersion."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=str(path), context=context,
                                client_configuration=cfg)
    except (ConfigException, ValueError, TypeError, KeyError, AttributeError, OSError) as err:
        raise ClusterError(f"kubeconfig {path} cannot be used ({short_reason(err)}); "
                           f"{_KUBECONFIG_FIX}") from None
    cfg.retries = 0
    try:
        with client.ApiClient(cfg) as api:
            return client.VersionApi(api).get_code(_request_timeout=(timeout, timeout)).git_version
    except ApiException as err:
        if err.status in (401, 403):
            raise ClusterError(f"the API server at {server} refused the credentials of kubeconfig "
                               f"{path} ({err.status} {err.reason}); {_KUBECONFIG_FIX}") from None
        raise ClusterError(f"the API server at {server} answered GET /version with {err.status} "
                           f"{err.reason}; {_KUBECONFIG_FIX}") from None
    except Exception as err:  # urllib3 errors: refused, timed out, TLS, DNS
        raise ClusterError(f"cannot reach the API server at {server} ({short_reason(err)}); "
                           f"{_KUBECONFIG_FIX}") from None


def short_reason(err: BaseException) -> str:
    """A one-line reason without urllib3's object reprs."""
    reason = getattr(err, "reason", None)
    text = str(reason if isinstance(reason, BaseException) else err).splitlines()[0]
    text = re.sub(r"^(?:(?:<[^>]*>|\w+\([^)]*\)|None): )+", "", text)
    return text or type(err).__name__


