"""Runtimes as a parameter: ids, the RuntimeClass in every pod, facts per runtime
handler, and the oracle judging by the runtime's facts (a planted lie turns red)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from test_phases import CASE_BY_NAME, ENVIRONMENT, failed, judge

from secctx.cluster import hostlimits
from secctx.core import caps
from secctx.images.imagemap import ImageMap
from secctx.oracle import nodefacts
from secctx.oracle.nodefacts import DEFAULT_RUNTIME, Environment, Runtime
from secctx.run import plugin, runner, session

NODE_STATUS = {"runtimeHandlers": [
    {"name": "", "features": {"userNamespaces": True, "recursiveReadOnlyMounts": True}},
    {"name": "crun", "features": {"recursiveReadOnlyMounts": True}},
    {"name": "runc", "features": {"userNamespaces": True, "recursiveReadOnlyMounts": True}}],
    "features": {"supplementalGroupsPolicy": True}}


def config(runtimes: list[str], **more):
    opts = {"runtime_class": runtimes, "cases_dir": [], "existing_cluster": False,
            "mode": "offline", **more}
    return SimpleNamespace(getoption=lambda name, default=None: opts.get(name, default))


def test_every_case_runs_under_each_runtime_asked_for_and_its_id_says_which():
    params = plugin.case_params(config(["default", "crun", "crun"]))
    by_runtime = {r: [p.id for p in params if p.runtime == r] for r in ("default", "crun")}
    assert len(by_runtime["default"]) == len(by_runtime["crun"]) == len(params) / 2
    assert "fsgroup-demo[local-storage]@crun" in by_runtime["crun"]
    assert not any("@" in i for i in by_runtime["default"]), "default: the ids of before"



def test_set_up_learns_only_the_runtimes_of_the_selected_cases():
    params = plugin.case_params(config(["default", "crun", "runsc"]))
    def item(marker=None, **params):
        return SimpleNamespace(callspec=SimpleNamespace(params=params),
                               get_closest_marker=lambda name: name == marker or None)
    items = [item(secctx_recipe_case=p) for p in params if p.runtime != "crun"] + [item()]
    cfg = config(["default", "crun", "runsc"])
    assert plugin.selected_runtimes(items, cfg) == ["default", "runsc"]
    assert plugin.selected_runtimes(items[-1:], cfg) == ["default"], "no recipe case: default"
    assert plugin.selected_runtimes([item("every_runtime")], cfg) == ["default", "crun", "runsc"]


@pytest.mark.parametrize("options, runtimes", [
    ({"mode": "offline"}, {DEFAULT_RUNTIME, "crun", "runsc"}),  # the offline node image's
    ({"mode": "online"}, {DEFAULT_RUNTIME}),  # kindest/node: runc only
    ({"mode": "offline", "kind_image": "mine:v1"}, {DEFAULT_RUNTIME}),  # handlers unknown
])
def test_without_runtime_class_a_kind_run_runs_the_runtimes_its_node_image_has(
        options, runtimes, monkeypatch):
    monkeypatch.setattr(hostlimits, "bounding_set", lambda: caps.ALL_CAPS)  # a host that grants all
    assert {p.runtime for p in plugin.case_params(config([], **options))} == runtimes


def test_an_offline_kind_run_leaves_out_the_runtime_the_host_cannot_run(monkeypatch):
    # A host whose bounding set lacks SYS_RESOURCE: gVisor's shim cannot lower its OOM
    # score there, so runsc is neither built nor run (no skip per case: one line says why).
    monkeypatch.setattr(hostlimits, "bounding_set",
                        lambda: caps.ALL_CAPS & ~caps.encode(["SYS_RESOURCE"]))
    assert {p.runtime for p in plugin.case_params(config([], mode="offline"))} == {
        DEFAULT_RUNTIME, "crun"}
    assert set(hostlimits.left_out()) == {"runsc"}
    assert "CAP_SYS_RESOURCE, which the host's bounding set lacks" in hostlimits.left_out()["runsc"]
    assert hostlimits.left_out(caps.ALL_CAPS) == {}


def test_the_host_bounding_set_is_read_from_proc_status(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n")
    assert caps.decode(caps.ALL_CAPS & ~hostlimits.bounding_set(status)) == ["SYS_RESOURCE"]


def test_a_runtime_left_out_of_the_node_image_is_said_once_with_its_reason(monkeypatch):
    api, kube = fake_cluster(monkeypatch, {}, ["", "runc"])
    env = Environment()
    problems, ours = session.RuntimeProbes(kube, "ns", "busybox", ["runsc"], create=True,
                                           left_out={"runsc": "it needs X"}).finish(env)
    assert api.created == [] and not ours
    assert problems["runsc"] == ("RuntimeClass runsc is not on the cluster: the offline node "
                                 "image leaves it out (it needs X): run on a host that grants "
                                 "it, or drop --secctx-runtime-class runsc")
    assert env.extra["runtime_classes"].endswith("; left out of the node image: runsc (it needs X)")


def test_each_pod_of_a_case_gets_the_runtime_class_and_default_sets_none():
    suite = SimpleNamespace(image_map=ImageMap("offline", {}))
    deployment = next(c for c in CASE_BY_NAME.values() if c.deployment)
    for case in (deployment, CASE_BY_NAME["fsgroup-demo"]):
        objects = runner.prepare_objects(case, suite, None, "crun")
        pods = [o for o in objects if o["kind"] in ("Pod", "Deployment")]
        assert pods and all(runner.podspec.pod_spec(o)["runtimeClassName"] == "crun" for o in pods)
        assert all("runtimeClassName" not in str(o) for o in objects
                   if o["kind"] not in ("Pod", "Deployment"))
        assert "runtimeClassName" not in str(runner.prepare_objects(case, suite, None))


def test_a_handlers_features_are_its_own_not_the_default_handlers():
    assert nodefacts.reported_features(NODE_STATUS)["user_namespaces"] is True
    crun = nodefacts.reported_features(NODE_STATUS, "crun")
    assert crun == {"user_namespaces": False, "recursive_read_only_mounts": True,
                    "supplemental_groups_policy": True}
    assert not any(nodefacts.reported_features(NODE_STATUS, "runsc")[f]
                   for f in ("user_namespaces", "recursive_read_only_mounts"))


def test_the_runtime_probe_runs_under_the_class_and_reads_privileged_and_plain():
    ds = nodefacts.runtime_probe("busybox:1.36", "crun")
    spec = ds["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == "crun" and "hostPID" not in spec
    facts = nodefacts.runtime_facts("cap_last_cap=40\n"
                                    "default_capbnd=00000000a80425fb\ndefault_capinh=0000000000000001\n"
                                    "userns_unconfined=no\n")
    assert facts == {"kernel_caps": (1 << 41) - 1, "runtime_default_caps": 0xa80425fb,
                     "runtime_default_inh": 1, "userns_unconfined": False}


def test_a_handler_grants_what_containerd_asks_for_as_far_as_its_kernel_has_it():
    # containerd asks every handler for its own CapEff; a VM handler's kernel without
    # capabilities 38-40 cannot hold them, and a runc-like one keeps the node's set.
    env = with_runtime(dataclasses.replace(ENVIRONMENT, per_node={"n1": {
        "grantable_caps": caps.ALL_CAPS}}), kernel_caps=(1 << 38) - 1)
    assert env.under("crun").on("n1").grantable_caps == (1 << 38) - 1
    assert env.under("crun").grantable_caps == (1 << 38) - 1
    same = with_runtime(dataclasses.replace(ENVIRONMENT, per_node={"n1": {
        "grantable_caps": 0x3ffeffffff}}), kernel_caps=(1 << 41) - 1)
    assert same.under("crun").on("n1").grantable_caps == 0x3ffeffffff


NARROW = caps.RUNTIME_DEFAULT & ~(1 << caps.CAPABILITIES.index("NET_RAW"))


def with_runtime(env: Environment, **facts) -> Environment:
    node = {"grantable_caps": env.grantable_caps, "runtime_default_caps": env.runtime_default_caps,
            "userns_unconfined": env.userns_unconfined, "user_namespaces": True,
            "recursive_read_only_mounts": True, "supplemental_groups_policy": True, **facts}
    return dataclasses.replace(env, runtimes={"crun": Runtime("crun", "crun", {"n1": node})})


def test_under_a_runtime_the_environment_is_that_handlers():
    env = with_runtime(dataclasses.replace(ENVIRONMENT, per_node={"n1": {"image_users": {}}}),
                       runtime_default_caps=NARROW, user_namespaces=False)
    crun = env.under("crun")
    assert crun.runtime == "crun" and crun.runtime_default_caps == NARROW
    assert crun.on("n1").runtime_default_caps == NARROW and not crun.on("n1").user_namespaces
    assert crun.on("n1").image_users == {}, "the node's other facts stay"
    assert env.under(DEFAULT_RUNTIME) is env
    with pytest.raises(KeyError):
        env.under("runsc")


def test_the_oracle_judges_a_runtime_by_its_own_default_capabilities():
    """The recorded runc container keeps NET_RAW; a runtime whose plain containers
    lack it must show the recording's CapBnd as a difference (the lie), and runc's
    facts must not."""
    record_case = "escalation-allowed"
    assert "CapBnd" not in failed(judge(record_case)[1])
    crun = with_runtime(ENVIRONMENT, runtime_default_caps=NARROW).under("crun")
    assert "CapBnd" in failed(judge(record_case, env=crun)[1])


class FakeNodeApi:
    def __init__(self, classes):
        self.classes, self.created = dict(classes), []

    def list_runtime_class(self):
        return SimpleNamespace(items=[SimpleNamespace(metadata=SimpleNamespace(
            name=n, labels=session.MANAGED_BY if n in self.created else None), handler=h)
            for n, h in self.classes.items()])

    def create_runtime_class(self, body):
        self.created.append(body.metadata.name)
        self.classes[body.metadata.name] = body.handler


def fake_cluster(monkeypatch, classes: dict[str, str], handlers: list[str]):
    """An API with these RuntimeClasses and one node reporting these handlers."""
    api = FakeNodeApi(classes)
    monkeypatch.setattr(session.client, "NodeV1Api", lambda _: api)
    node = SimpleNamespace(metadata=SimpleNamespace(name="n1"), status=SimpleNamespace(
        runtime_handlers=[SimpleNamespace(name=h) for h in handlers]))
    kube = SimpleNamespace(api=None, core=SimpleNamespace(
        list_node=lambda: SimpleNamespace(items=[node])))
    kube.clone = lambda: kube
    return api, kube


def test_runtimes_missing_or_not_running_are_one_line_each_and_none_is_hidden(monkeypatch):
    api, kube = fake_cluster(monkeypatch, {"crun": "crun", "gvisor": "runsc"}, ["", "test-handler"])

    def gather(kube, ns, image, runtime):
        if runtime.handler == "crun":
            raise nodefacts.RuntimeUnavailable(runtime, "crun: boom")
        return runtime
    monkeypatch.setattr(nodefacts, "gather_runtime", gather)
    env = Environment()
    names = ["default", "crun", "secctx-test-handler", "nope"]
    problems, ours = session.learn_runtimes(kube, "ns", "busybox", env, names, create=True)
    assert ours == set(), "crun is the cluster's own RuntimeClass: its failure is the cluster's"
    assert api.created == ["secctx-test-handler"]
    assert set(env.runtimes) == {"secctx-test-handler"}
    assert problems["crun"] == ("RuntimeClass crun (handler crun) cannot run containers here: "
                                "crun: boom")
    assert problems["nope"].startswith("RuntimeClass nope is not on the cluster (it has: crun, ")
    assert "not in this run (--secctx-runtime-class NAME): gvisor" in env.extra["runtime_classes"]
    assert "node handlers: (default), test-handler" in env.extra["runtime_classes"]


def test_a_runtime_error_a_missing_node_capability_explains_says_which_and_why():
    runsc = nodefacts.Runtime("runsc", "runsc")
    error = ("failed to start shim: start failed: io.containerd.runsc.v1: failed to set OOM "
             "Score on shim: write /proc/2416/oom_score_adj: permission denied: exit status 1")
    here = caps.ALL_CAPS & ~caps.encode(["SYS_RESOURCE"])  # this host's nodes
    line = nodefacts.unavailable_line(runsc, error, here)
    assert line.startswith("RuntimeClass runsc (handler runsc) cannot run containers here: "
                           "failed to start shim")
    assert "lowering it needs CAP_SYS_RESOURCE, which the nodes' bounding set lacks" in line
    # Nodes that hold SYS_RESOURCE: the error stands alone, no wrong explanation.
    assert nodefacts.unavailable_line(runsc, error, caps.ALL_CAPS).endswith("exit status 1")


def test_what_a_runtime_shows_differently_from_the_default_is_named_field_by_field():
    from secctx import observations
    entry = {"container": "app", "outcome": {"status": "running"}, "storage_kinds": {},
             "containers": {"app": {"process": {"no_new_privs": True}}}}
    lie = {**entry, "containers": {"app": {"process": {"no_new_privs": False}}}}
    doc = {"cases": {"a": {**entry, "runtime": "default"}, "a@crun": {**entry, "runtime": "crun"},
                     "b": {**entry, "runtime": "default"}, "b@crun": {**lie, "runtime": "crun"},
                     "only-crun@crun": {**lie, "runtime": "crun"}}}
    [change] = observations.runtime_differences(doc)["crun"]
    assert (change.case, change.field, change.old, change.new) == (
        "b", "process.no_new_privs", True, False)
    same = {"cases": {k: v for k, v in doc["cases"].items() if k.startswith("a")}}
    assert observations.runtime_differences(same) == {"crun": []}


def test_a_runtime_class_the_suite_added_that_cannot_run_is_the_hosts_limit(monkeypatch):
    api, kube = fake_cluster(monkeypatch, {}, ["", "runsc"])

    def gather(kube, ns, image, runtime):
        raise nodefacts.RuntimeUnavailable(runtime, "shim: boom")
    monkeypatch.setattr(nodefacts, "gather_runtime", gather)
    problems, ours = session.learn_runtimes(kube, "ns", "busybox", Environment(), ["runsc"],
                                            create=True)
    assert api.created == ["runsc"] and ours == {"runsc"}
    suite = session.Suite(kube, None, "run", Environment(), runtime_problems=problems,
                          host_cannot_run=frozenset(ours))
    with pytest.raises(pytest.skip.Exception, match=r"ENVIRONMENT CANNOT ENFORCE: RuntimeClass "
                       r"runsc \(handler runsc\) cannot run containers here: shim: boom"):
        suite.require_runtime("runsc")
    suite.host_cannot_run = frozenset()  # a cluster's own RuntimeClass that does not work
    with pytest.raises(pytest.fail.Exception, match="shim: boom"):
        suite.require_runtime("runsc")
    suite.require_runtime("default")  # no problem: returns


def test_a_kind_runtime_class_is_created_only_for_a_handler_every_node_reports(monkeypatch):
    api, kube = fake_cluster(monkeypatch, {}, ["", "runc"])
    problems, _ = session.learn_runtimes(kube, "ns", "busybox", Environment(), ["crun"],
                                         create=True)
    assert api.created == [] and problems["crun"].startswith("RuntimeClass crun is not on")


def test_the_offline_node_registers_crun_beside_kinds_handlers_behind_the_capability_shim():
    import tomllib

    from secctx.offline import nodeimage
    kind = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
            '  runtime_type = "io.containerd.runc.v2"\n')
    runtimes = tomllib.loads(nodeimage.with_runtime_handlers(kind))["plugins"][
        "io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert set(runtimes) == {"runc", "crun", "runsc"}
    assert runtimes["runsc"] == {"runtime_type": "io.containerd.runsc.v1"}
    assert runtimes["crun"]["runtime_type"] == "io.containerd.runc.v2"
    assert runtimes["crun"]["base_runtime_spec"] == "/etc/containerd/cri-base-crun.json"
    assert runtimes["crun"]["options"] == {"BinaryName": "/usr/local/sbin/crun",
                                           "SystemdCgroup": True}
    without = tomllib.loads(nodeimage.with_runtime_handlers(kind, without={"runsc"}))["plugins"][
        "io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert set(without) == {"runc", "crun"}, "a runtime left out has no handler"
    assert set(session.OFFLINE_RUNTIME_CLASSES) <= {
        name for name, handler in session.KIND_RUNTIME_CLASSES.items()
        if handler in nodeimage.handler_names()}, "the offline run's classes are the image's"


def test_the_run_ends_with_one_line_per_runtime_and_the_whole_differing_values(tmp_path):
    from secctx import observations
    from secctx.observations import recording
    c = observations.Collector()
    entry = {"container": "app", "storage_kinds": {}, "containers": {},
             "outcome": {"status": "rejected", "reason": "RunContainerError", "exit_code": None,
                         "message": "x" * 100 + " operation not permitted"}}
    c.cases = {"a": {**entry, "runtime": "default"},
               "a@crun": {**entry, "runtime": "crun", "outcome": {
                   **entry["outcome"], "message": "x" * 100 + " Operation not permitted"}}}
    lines = recording.finish(c, tmp_path / "o.json", None)
    assert ("under RuntimeClass crun, against the default runtime: 1 field(s) differ in 1 "
            "case(s): 1 as Kubernetes promises for crun's own facts, 0 not (the test failed)"
            in lines), lines
    assert "  a@crun: as promised: the oracle predicted it from crun's facts" in lines
    assert any(line.startswith("    outcome.message: ") and line.endswith(
        " Operation not permitted") for line in lines), lines
    lines = recording.finish(c, tmp_path / "o.json", None, failed={"a@crun"})
    assert "0 as Kubernetes promises for crun's own facts, 1 not (the test failed)" in lines[1]
    assert lines[2].startswith("  a@crun: NOT PROMISED: its test failed")


def test_a_local_pv_is_made_for_every_local_claim_of_the_selected_cases():
    """A bound local PV is not bound again: three RuntimeClasses need three of each
    (4 PVs left two local-storage cases of a default/runc/crun run without one)."""
    def items(runtimes):
        return [SimpleNamespace(callspec=SimpleNamespace(params={"secctx_recipe_case": p}))
                for p in plugin.case_params(config(runtimes))]
    local = [p for p in plugin.case_params(config(["default"])) if p.storage == "local"]
    claims = sum(sum(o.get("kind") == "PersistentVolumeClaim" for o in p.case.objects)
                 for p in local)
    assert claims >= 2
    assert plugin.local_pv_count(items(["default"])) == max(plugin.MIN_LOCAL_PVS, claims)
    assert plugin.local_pv_count(items(["default", "runc", "crun"])) == 3 * claims
    assert plugin.local_pv_count([]) == plugin.MIN_LOCAL_PVS
