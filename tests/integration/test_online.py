"""The online path, run for real through a registry on this machine.

A distribution registry (registry.py) holds, under their real names, the node
image (`kindest/node:v1.37.2`, this repository's offline build of it), the
faithful stand-ins of the recipe's images (`library/busybox:1.36`,
`library/nginx:1.25`, `nicolaka/netshoot:latest`: secctx.images.faithful) and
the suite's own test images (`secctx-conformance/...`, as ghcr.io would).
It is the engine's Docker Hub mirror and, through --secctx-registry-mirror, the kind
nodes' mirror for docker.io, registry.k8s.io and ghcr.io. The suite then runs
as any online user runs it: kind pulls the node image, the nodes pull every
workload image with the manifests' own pull policy, and the suite builds and
loads nothing (its report says so, and the test counts it).
"""
from __future__ import annotations

import json
import pwd
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from secctx.images import build, faithful
from secctx.images.imagemap import ImageMap, split_reference
from secctx.offline import nodeimage
from secctx.offline.gomod import KubeVersion

from . import hosted_runner, registry
from .robust_helpers import ROOT, cli, run_pytest

pytestmark = pytest.mark.e2e

CLUSTER = "secctx-online"
VERSION = "v1.37.2"
NODE_IMAGE = f"kindest/node:{VERSION}"
PORT = 5001
ONLINE = ("--cluster-name", CLUSTER, "--kind-image", NODE_IMAGE,
          "--secctx-registry-mirror", registry.NODES_URL, "-p", "no:cacheprovider", "-s", "-rA")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The registry with every image of an online run, the engine mirroring Docker
    Hub through it; removed, with the cluster, after the module."""
    reg = registry.LocalRegistry(PORT, tmp_path_factory.mktemp("registry") / "data").start()
    try:
        reg.push(nodeimage.build(KubeVersion.parse(VERSION)).tag, f"kindest/node:{VERSION}")
        for real, standin in faithful.build_all().items():
            reg.push(standin, split_reference(real)[1])
        online = ImageMap.load("online")
        offline = ImageMap.load("offline")
        build.build_workload_images(offline=False)
        user1000 = "secctx.local/faithful/nginx-user1000:1.25"
        build.build_user1000(faithful.NGINX, user1000)
        for image, ref in online.suite_owned().items():
            local = user1000 if ref == "secctx/nginx-user1000:1.25" else offline.resolve(ref)
            reg.push(local, split_reference(image)[1])
        # kind must pull the node image: no local tag of that name
        subprocess.run(["docker", "rmi", NODE_IMAGE], capture_output=True)
        with registry.engine_mirror(f"http://{reg.host}"):
            yield reg
    finally:
        cli("cluster-down", "--cluster-name", CLUSTER, timeout=300)
        subprocess.run(["docker", "rmi", NODE_IMAGE], capture_output=True)
        reg.stop()


def test_online_auto_run_pulls_everything_and_builds_nothing(world, tmp_path):
    observations = ROOT / "reports" / "online" / "observations.json"
    run = run_pytest("suites", "--secctx-mode", "auto", "--keep-cluster", *ONLINE,
                     "--secctx-observations", str(observations), "--alluredir", str(tmp_path / "allure"),
                     log=tmp_path / "run.log", timeout=1200)
    summary = run.output.strip().splitlines()[-1]
    # Kept with the run's observations: what a reader of the CI artifacts asks first.
    (observations.parent / "run.txt").write_text(
        f"online run: exit {run.returncode} in {run.seconds:.0f}s: {summary}\n"
        + "".join(ln + "\n" for ln in run.output.splitlines()
                  if re.search(r"\] (mode|Kubernetes|the nodes have|creating kind|images:)", ln)))
    print(f"\nonline run: exit {run.returncode} in {run.seconds:.0f}s: {summary}")
    assert run.returncode == 0, run.output[-6000:]
    assert "mode: online (the Docker engine has registry mirrors configured)" in run.output
    images = len(ImageMap.load("online").local_images())
    environment = json.loads(re.search(r"environment: (\{.*\})", run.output).group(1))
    assert environment["images"] == (f"{images} pulled by the nodes, 0 built here, "
                                     "0 loaded into the nodes")
    assert "docker build" not in run.output and "kind load" not in run.output
    assert re.search(r"\b1[0-9]{2} passed\b", summary) and "failed" not in summary, summary
    # every workload image came from the registry, asked for as a mirror of its registry
    served = _manifest_requests()
    for image in ImageMap.load("online").local_images():
        registry_, path = split_reference(image)
        name, _, tag = path.rpartition(":")
        assert (f"/v2/{name}/manifests/{tag}", registry_) in served, image


def test_image_registry_pulls_every_reference_from_that_registry(world, tmp_path):
    """--secctx-image-registry HOST: the manifests' and the node helper's images, rewritten
    to HOST/<path>, asked for from HOST itself (no mirror namespace)."""
    host = registry.NODES_URL.split("://")[1]
    run = run_pytest("suites", "--secctx-mode", "online", "--keep-cluster", "--secctx-image-registry", host,
                     *ONLINE, "-k", "(secure-pod or supplemental-groups-merge) and not test_case_file_is_valid",
                     log=tmp_path / "run.log", timeout=600)
    assert run.returncode == 0, run.output[-4000:]
    served = _manifest_requests()
    # asked for as HOST's own image (containerd names the registry as `ns` even then),
    # not as a mirror of docker.io: the node helper's busybox, and a test image
    for path in ("/v2/library/busybox/manifests/1.36",
                 "/v2/secctx-conformance/identity/manifests/uid-with-passwd"):
        assert {(path, None), (path, host)} & served, (path, sorted(served))


def test_a_registry_without_an_image_ends_the_run_once_with_one_line(world, tmp_path):
    image_map = tmp_path / "map.yaml"
    image_map.write_text(yaml.safe_dump({"nicolaka/netshoot:latest": {
        "online": "docker.io/nicolaka/netshoot:not-in-the-registry"}}))
    run = run_pytest("suites", "--secctx-mode", "online", "--secctx-image-map", str(image_map), *ONLINE,
                     log=tmp_path / "run.log", timeout=600)
    print(f"\nmissing image: exit {run.returncode} in {run.seconds:.0f}s")
    assert run.returncode != 0
    errors = [ln for ln in run.output.splitlines() if ln.startswith("ERROR suites/")]
    assert len(errors) == 1, run.output[-4000:]  # the first test that needs the cluster, only
    line = next(ln for ln in run.output.splitlines() if ln.startswith("INFRASTRUCTURE:"))
    assert line.startswith("INFRASTRUCTURE: suite set-up on the cluster failed: node "
                           "secctx-online-control-plane cannot get image "
                           "docker.io/nicolaka/netshoot:not-in-the-registry from docker.io: "
                           "ErrImagePull: "), line
    assert "not found" in line and "--secctx-image-registry" in line, line
    assert re.search(r"=+ 1 error in ", run.output.strip().splitlines()[-1]), run.output[-2000:]


def _manifest_requests() -> set[tuple[str, str | None]]:
    """(path, the registry a mirror request was for, None when asked directly) of every
    manifest GET the registry logged."""
    logs = subprocess.run(["docker", "logs", registry.NAME], capture_output=True, text=True)
    out = set()
    for m in re.finditer(r'http\.request\.method=(?:GET|HEAD) .*?http\.request\.uri="?'
                         r'(/v2/[^ "?]+/manifests/[^ "?]+)(?:\?ns=([^ "&]+))?"? .*?'
                         r'http\.response\.status=200', logs.stdout + logs.stderr):
        out.add((m.group(1), m.group(2)))
    return out


def test_workflow_set_up_as_an_unprivileged_user_with_sudo_then_one_case_green(world, tmp_path):
    """The workflows' steps as GitHub's hosted `runner` user takes them (hosted_runner.py:
    not root, passwordless sudo, in the docker group, its own checkout and SECCTX_CACHE,
    a Debian without debootstrap, libseccomp-dev and busybox-static): `hack/run.sh` sets
    up (venv, host packages through sudo, engine), then runs one case online on a kind
    cluster of its own. Before lib.sh asked the mode, this ended before pytest with
    `missing packages debootstrap ...`, exit 2."""
    with hosted_runner.runner_user() as user:
        run = user.run("bash", "hack/run.sh", "--secctx-mode", "online",
                       "--cluster-name", hosted_runner.CLUSTER, "--kind-image", NODE_IMAGE,
                       "--secctx-registry-mirror", registry.NODES_URL, "-k", "secure-pod",
                       "--secctx-runtime-class", "default", "-p", "no:cacheprovider", "-rA",
                       log=tmp_path / "runner.log", timeout=1200)
        set_up = re.search(r"^collected .*$", run.output, re.M)
        print(f"\nhack/run.sh as {user.name}: exit {run.returncode} in {run.seconds:.0f}s; "
              f"{set_up.group(0) if set_up else 'pytest never collected'}")
        assert run.returncode == 0, run.output[-6000:]
        # what lib.sh decided and installed, as the hosted runner's mode needs
        needs = next(ln for ln in run.output.splitlines() if "mode online (" in ln)
        assert needs.endswith("needs a Docker engine and busybox-static"), needs
        assert re.search(r"^\[secctx\] installing busybox-static \(.*\) with sudo$", run.output,
                         re.M), run.output[:3000]
        assert "missing packages" not in run.output
        # the case ran, as the user: its JUnit file is the user's, and says green
        junit = user.checkout / "reports" / "junit.xml"
        assert junit.stat().st_uid == pwd.getpwnam(user.name).pw_uid
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        assert (suite.get("failures"), suite.get("errors")) == ("0", "0"), run.output[-4000:]
        passed = [c.get("name") for c in suite.iter("testcase")
                  if not list(c.iterfind("skipped")) and not list(c.iterfind("failure"))]
        assert any(n.startswith("test_recipe_case[secure-pod") for n in passed), passed
