"""A kubeconfig for the suite's ServiceAccount of deploy/rbac.yaml, and nothing else.

The token comes from the TokenRequest API (`create serviceaccounts/token`, what
`kubectl create token` does): bound to the ServiceAccount, with an expiry, and
never stored in the cluster. The cluster entry (server, CA) is the admin
kubeconfig's own.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import yaml

from ..cluster.existing import check_kubeconfig
from ..cluster.kind import ClusterError
from ..core import paths

NAMESPACE = "secctx-runner"
SERVICE_ACCOUNT = "secctx-conformance"
MANIFEST = paths.RBAC_MANIFEST_NAME


def service_account_kubeconfig(admin: Path, out: Path, context: str | None = None,
                               namespace: str = NAMESPACE, name: str = SERVICE_ACCOUNT,
                               seconds: int = 7200) -> datetime:
    """Write `out`, a kubeconfig whose only credential is a token of the
    ServiceAccount, valid for `seconds` (the API server may shorten it). Returns
    when the token expires."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    check_kubeconfig(admin, context)
    data = yaml.safe_load(admin.read_text())
    context_name = context or data["current-context"]
    ctx = next(c["context"] for c in data["contexts"] if c["name"] == context_name)
    cluster = next(c for c in data["clusters"] if c["name"] == ctx["cluster"])
    api = config.new_client_from_config(str(admin), context)
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds))
    try:
        status = client.CoreV1Api(api).create_namespaced_service_account_token(
            name, namespace, request).status
    except ApiException as err:
        if err.status == 404:
            raise ClusterError(f"ServiceAccount {namespace}/{name} does not exist: apply "
                               f"{MANIFEST} first (kubectl apply -f {MANIFEST}, or: python -m "
                               "secctx rbac-manifest | kubectl apply -f -)") from None
        raise
    user = f"system:serviceaccount:{namespace}:{name}"
    out.write_text("")
    os.chmod(out, 0o600)  # a credential: readable by its owner only
    out.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": status.token}}],
        "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": user,
                                                "namespace": namespace}}],
    }, sort_keys=False))
    return status.expiration_timestamp
