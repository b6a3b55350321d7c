"""Can every node get every image of the run? Asked once, before any test.

Where the nodes pull (online, an existing cluster) one pod per node holds one
container per image (pinned to the node, `sh -c 'exit 0'`), with the pull
policy a manifest without one would get. The kubelet pulls them all in one
sync and moves on after a failure, so one watch sees every image's answer:
started (or exited) means the node has it; ErrImagePull, ImagePullBackOff,
ErrImageNeverPull or InvalidImageName carry the registry's or the node's own
reason. A missing image then ends the run once, with that reason, instead of
failing every test that uses it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from kubernetes import client, watch

from ..core import timeouts
from ..images.imagemap import SUITE_REGISTRY, split_reference
from . import IMAGE_MISSING, Kube, WaitTimeout, format_events

NAME = "secctx-pull-check"
SUITE_IMAGES_HINT = (f"{SUITE_REGISTRY}: for a cluster without access, push them to your "
                     "registry with `python -m secctx images-publish HOST[/PREFIX]` and pass "
                     "--secctx-image-registry HOST[/PREFIX]")
FAILED = IMAGE_MISSING | {"InvalidImageName"}


class ImageUnavailable(RuntimeError):
    """A node cannot get an image of the run; the message names it, its registry
    and the node's reason."""


@dataclass(frozen=True)
class Unavailable:
    image: str
    node: str
    reason: str
    message: str


def default_pull_policy(image: str) -> str:
    """What the API server gives a container without imagePullPolicy."""
    name = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in name and (":" not in name or name.endswith(":latest")) \
        else "IfNotPresent"


def pod(node: str, images: list[str], never_pull: bool) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{NAME}-{node}"[:63], "labels": {"app": NAME}},
        "spec": {
            "nodeName": node, "restartPolicy": "Never", "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0, "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": f"image-{i}", "image": image, "command": ["sh", "-c", "exit 0"],
                            "imagePullPolicy": "Never" if never_pull
                            else default_pull_policy(image)}
                           for i, image in enumerate(images)],
        },
    }


def pulled(cs: client.V1ContainerStatus) -> bool | None:
    """True: the node has the container's image; False: it cannot get it (the
    container's waiting state says why); None: no answer yet."""
    st = cs.state
    if st and st.waiting and st.waiting.reason in FAILED:
        return False
    if st and (st.running or st.terminated or
               (st.waiting and st.waiting.reason not in ("ContainerCreating", None))):
        return True  # how the container then ran does not matter
    return None


def check(kube: Kube, namespace: str, images: list[str], never_pull: bool,
          timeout: float = timeouts.PULL_CHECK) -> list[Unavailable]:
    """The images some node cannot get (empty: every node has every image). The pods
    go with `namespace` (the suite's set-up namespace), which is deleted right after."""
    nodes = [n.metadata.name for n in kube.core.list_node().items]
    for node in nodes:
        kube.core.create_namespaced_pod(namespace, pod(node, images, never_pull))
    pending = {(node, f"image-{i}") for node in nodes for i in range(len(images))}
    image_of = {f"image-{i}": image for i, image in enumerate(images)}
    missing: list[Unavailable] = []
    deadline = time.monotonic() + timeout
    w = watch.Watch()
    while pending and time.monotonic() < deadline:
        for ev in w.stream(kube.core.list_namespaced_pod, namespace,
                           label_selector=f"app={NAME}",
                           timeout_seconds=max(1, int(deadline - time.monotonic()))):
            p = ev["object"]
            for cs in (p.status.container_statuses if p.status else None) or []:
                key = (p.spec.node_name, cs.name)
                answer = pulled(cs) if key in pending else None
                if answer is None:
                    continue
                pending.discard(key)
                if answer is False:
                    missing.append(Unavailable(image_of[cs.name], p.spec.node_name,
                                               cs.state.waiting.reason,
                                               cs.state.waiting.message or ""))
            if not pending:
                w.stop()
    if pending:
        waiting = sorted({image_of[c] for _, c in pending})
        raise WaitTimeout(f"the nodes did not finish pulling {', '.join(waiting)} within "
                          f"{timeout:.0f}s; events:\n{format_events(kube.events(namespace))}")
    return missing


def one_line(missing: list[Unavailable], owned_note: str = "") -> str:
    """The set-up failure for images the nodes cannot get: the first one, its
    registry and the node's own reason, and how many more."""
    first = missing[0]
    registry = split_reference(first.image)[0]
    more = sorted({m.image for m in missing} - {first.image})
    also = f" (also: {', '.join(more)})" if more else ""
    if first.reason == "ErrImageNeverPull":
        fix = ("the images must already be on the nodes under these names (offline map): load "
               "them there, or drop --secctx-mode offline to pull them")
    else:
        fix = (f"make {registry} (or the mirror the nodes pull it through) serve it, point "
               "--secctx-image-registry at a registry that has it, or use --secctx-mode offline")
    return (f"node {first.node} cannot get image {first.image} from {registry}: {first.reason}: "
            f"{first.message.strip()}{also}; {fix}{owned_note}")
