"""Where the pod spec and the containers of a manifest object are: one home.

Manifests are plain dicts as loaded from YAML (camelCase keys).
"""
from __future__ import annotations

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec(obj: dict) -> dict:
    """The pod spec of a Pod, of a workload's pod template (Deployment, DaemonSet,
    Job, ...), or the argument itself when it is already a pod spec."""
    if "containers" in obj:
        return obj
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise ValueError(f"{obj.get('kind', 'object')} has no pod spec")
    if "template" in spec:
        return spec["template"].get("spec") or {}
    return spec


def containers(spec: dict) -> list[dict]:
    """Every container of a pod spec: init, regular and ephemeral."""
    return [c for key in CONTAINER_LISTS for c in spec.get(key) or []]


def container(spec: dict, name: str) -> dict:
    for c in containers(spec):
        if c.get("name") == name:
            return c
    raise ValueError(f"no container {name!r} in pod spec; it has "
                     f"{[c.get('name') for c in containers(spec)]}")


def condition_true(obj, kind: str = "Ready") -> bool:
    """A Pod's or Node's condition `kind` is True (API objects of the Python client)."""
    return any(c.type == kind and c.status == "True" for c in obj.status.conditions or [])
