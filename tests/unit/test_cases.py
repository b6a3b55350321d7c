"""Case files load, validate with file:line errors, and the manifests match the recipe."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from secctx.cases import Case, load_cases

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT / "fixtures" / "cases"
MANIFESTS_DIR = ROOT / "fixtures" / "manifests"
MANIFEST_FILES = sorted(MANIFESTS_DIR.glob("*.yaml"))


def real_cases() -> dict[str, Case]:
    cases, errors = load_cases([CASES_DIR])
    assert not errors, "\n".join(map(str, errors))
    return {case.name: case for case in cases}


def manifest(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((MANIFESTS_DIR / name).read_text()) if d]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing needle."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- the real fixtures ------------------------------------------------------

def test_real_cases_load_without_errors():
    cases = real_cases()
    assert set(cases) == {
        "secure-pod", "hardened-pod", "minimal-capabilities-pod", "network-debug-pod",
        "fsgroup-demo", "readonly-root-pod", "seccomp-default-pod", "custom-seccomp-pod", "seccomp-allowlist-probe",
        "selinux-pod", "apparmor-pod", "apparmor-pod-field", "apparmor-localhost", "apparmor-missing",
        "apparmor-unconfined", "secure-app",
        "troubleshooting-root-image", "troubleshooting-user1000-image",
        "troubleshooting-fix-permissions", "shared-pid-namespace", "host-pid",
        "image-root-in-wheel", "image-named-user", "image-uid-gid", "supplemental-groups-merge",
        "supplemental-groups-strict", "escalation-denied", "escalation-allowed",
        "userns-root", "userns-host-network", "userns-host-pid", "procmount-unmasked",
        "procmount-default", "recursive-read-only", "image-volume", "seccomp-unconfined",
        "volume-file-modes", "image-volume-fsgroup", "pvc-read-only",
    }
    for case in cases.values():
        assert case.objects, case.name
        assert case.container_spec()["name"] == case.container


def test_every_manifest_is_used_by_a_case():
    used = {path for case in real_cases().values() for path in case.manifests}
    assert set(MANIFEST_FILES) - used == set()


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_manifest_parses_and_names_its_objects(path: Path):
    text = path.read_text()
    assert text.startswith("# Recipe: "), "every manifest starts with its recipe section"
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    assert documents
    for doc in documents:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        # The suite applies each case into its own namespace.
        assert "namespace" not in doc["metadata"]


def test_custom_seccomp_profile_is_the_recipes():
    profile = json.loads((MANIFESTS_DIR / "custom-profile.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["architectures"] == ["SCMP_ARCH_X86_64"]
    [rule] = profile["syscalls"]
    assert rule["action"] == "SCMP_ACT_ALLOW"
    assert len(rule["names"]) == 27
    assert rule["names"][:5] == ["accept4", "bind", "clone", "close", "connect"]
    assert rule["names"][-1] == "write"


def test_deployment_case_uses_the_template_spec():
    case = real_cases()["secure-app"]
    assert case.deployment == "secure-app" and case.pod is None
    assert case.pod_spec()["serviceAccountName"] == "secure-app-sa"


def test_fsgroup_variants_follow_the_storage_kind():
    case = real_cases()["fsgroup-demo"]
    assert case.expectations("hostPath")["volumes"]["/data"]["gid"] == 0
    # Elsewhere the oracle derives fsGroup's group: nothing pinned.
    assert case.expectations("csi") == case.expectations("local") == {}


# --- the manifests are faithful to the recipe -------------------------------

def test_secure_pod_matches_recipe():
    [pod] = manifest("secure-pod.yaml")
    assert pod["spec"]["securityContext"] == {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}
    [app] = pod["spec"]["containers"]
    assert app["image"] == "nginx:1.25"
    assert app["securityContext"] == {"runAsNonRoot": True, "allowPrivilegeEscalation": False}
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert pod["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_hardened_pod_matches_recipe():
    [pod] = manifest("hardened-pod.yaml")
    spec = pod["spec"]
    assert pod["metadata"]["labels"] == {"app": "secure-app"}
    assert spec["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch", "supplementalGroups": [4000],
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    [app] = spec["containers"]
    assert app["securityContext"] == {
        "runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert [m["mountPath"] for m in app["volumeMounts"]] == ["/tmp", "/var/cache/app", "/var/run"]
    assert app["resources"] == {"limits": {"memory": "128Mi", "cpu": "500m"},
                                "requests": {"memory": "64Mi", "cpu": "250m"}}
    assert (spec["automountServiceAccountToken"], spec["hostNetwork"], spec["hostPID"],
            spec["hostIPC"]) == (False, False, False, False)


def test_capability_pods_match_recipe():
    [minimal] = manifest("minimal-capabilities-pod.yaml")
    assert minimal["spec"]["containers"][0]["securityContext"] == {
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}
    [debug] = manifest("network-debug-pod.yaml")
    [container] = debug["spec"]["containers"]
    assert container["image"] == "nicolaka/netshoot:latest"
    assert container["command"] == ["sleep", "infinity"]
    assert container["securityContext"] == {
        "runAsNonRoot": False, "capabilities": {"drop": ["ALL"], "add": ["NET_RAW", "NET_ADMIN"]}}


def test_fsgroup_demo_and_its_claim():
    [pod] = manifest("fsgroup-demo.yaml")
    assert pod["spec"]["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"}
    assert pod["spec"]["containers"][0]["command"] == ["sh", "-c", "ls -la /data && sleep infinity"]
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "my-pvc"}}]
    [claim] = manifest("my-pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "my-pvc"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster default applies


def test_readonly_root_pod_matches_recipe():
    [pod] = manifest("readonly-root-pod.yaml")
    [nginx] = pod["spec"]["containers"]
    assert nginx["securityContext"] == {"readOnlyRootFilesystem": True}
    assert [m["mountPath"] for m in nginx["volumeMounts"]] == [
        "/tmp", "/var/run", "/var/cache/nginx", "/var/log/nginx"]
    assert all(v["emptyDir"] == {} for v in pod["spec"]["volumes"])


def test_seccomp_selinux_apparmor_pods_match_recipe():
    [default] = manifest("seccomp-default-pod.yaml")
    assert default["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    [custom] = manifest("custom-seccomp-pod.yaml")
    assert custom["spec"]["securityContext"]["seccompProfile"] == {
        "type": "Localhost", "localhostProfile": "profiles/custom-profile.json"}
    [selinux] = manifest("selinux-pod.yaml")
    assert selinux["spec"]["securityContext"] == {"seLinuxOptions": {"level": "s0:c123,c456"}}
    assert selinux["spec"]["containers"][0]["securityContext"]["seLinuxOptions"] == {
        "level": "s0:c123,c456", "user": "system_u", "role": "system_r", "type": "container_t"}
    [apparmor] = manifest("apparmor-pod.yaml")
    assert apparmor["metadata"]["annotations"] == {
        "container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}
    [field] = manifest("apparmor-pod-field.yaml")
    assert "annotations" not in field["metadata"]
    assert field["spec"]["containers"][0]["securityContext"] == {"appArmorProfile": {"type": "RuntimeDefault"}}


def test_secure_app_matches_recipe():
    account, config, deployment = manifest("secure-app.yaml")
    assert (account["kind"], account["metadata"]["name"]) == ("ServiceAccount", "secure-app-sa")
    assert (config["kind"], config["metadata"]["name"]) == ("ConfigMap", "app-config")
    assert "app.properties" in config["data"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "secure-app"}}
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"] == {"runAsUser": 10000, "runAsGroup": 10000, "fsGroup": 10000,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert (spec["hostNetwork"], spec["hostPID"], spec["hostIPC"], spec["dnsPolicy"]) == (
        False, False, False, "ClusterFirst")
    [app] = spec["containers"]
    assert app["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert app["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert app["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080},
                                    "initialDelaySeconds": 10, "periodSeconds": 10}
    assert app["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 8080},
                                     "initialDelaySeconds": 5, "periodSeconds": 5}
    assert {"name": "config", "mountPath": "/etc/app/config", "readOnly": True} in app["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "100Mi"}} in spec["volumes"]
    assert {"name": "config", "configMap": {"name": "app-config"}} in spec["volumes"]


def test_troubleshooting_pods():
    [root_image] = manifest("troubleshooting-root-image.yaml")
    [container] = root_image["spec"]["containers"]
    assert container["image"] == "nginx:1.25"
    assert container["securityContext"] == {"runAsNonRoot": True}  # no runAsUser
    [user_image] = manifest("troubleshooting-user1000-image.yaml")
    assert user_image["spec"]["containers"][0]["image"] == "secctx/nginx-user1000:1.25"
    [fix] = manifest("troubleshooting-fix-permissions.yaml")
    [init] = fix["spec"]["initContainers"]
    assert init["name"] == "fix-permissions" and init["image"] == "busybox:1.36"
    assert init["command"] == ["sh", "-c", "chown -R 1000:1000 /data"]
    assert init["securityContext"] == {"runAsUser": 0}
    [app] = fix["spec"]["containers"]
    assert app["securityContext"] == {"runAsUser": 1000}
    assert fix["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


# --- errors point at file:line ----------------------------------------------

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: demo
spec:
  containers:
    - name: app
      image: busybox:1.36
      volumeMounts:
        - name: data
          mountPath: /data
  volumes:
    - name: data
      emptyDir: {}
"""

GOOD_CASE = """\
# Recipe: test
name: {name}
section: Run as non-root
field: runAsUser
manifest: ../manifests/pod.yaml
pod: demo
container: app
severity: normal
expect:
  uid: 1000
  cap_bnd: [CHOWN]
  volumes:
    /data: {{gid: 2000, writable: true}}
"""


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    """cases/ next to manifests/, as in fixtures/."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "pod.yaml").write_text(POD)
    (tmp_path / "cases").mkdir()
    return tmp_path / "cases"


def write(directory: Path, file_name: str, text: str) -> Path:
    path = directory / file_name
    path.write_text(text)
    return path


def only_error(directory: Path):
    cases, errors = load_cases([directory])
    assert cases == []
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def test_good_case_loads(case_dir: Path):
    write(case_dir, "good.yaml", GOOD_CASE.format(name="good"))
    cases, errors = load_cases([case_dir])
    assert errors == []
    [case] = cases
    assert case.expect == {"uid": 1000, "cap_bnd": frozenset({"CHOWN"}),
                           "volumes": {"/data": {"gid": 2000, "writable": True}}}
    assert case.outcome.status == "running"
    assert case.objects[0]["metadata"]["name"] == "demo"


def test_malformed_yaml_gives_file_and_line(case_dir: Path):
    text = GOOD_CASE.format(name="bad") + "upstream: [unclosed\nmore: x\n"
    path = write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert error.path == path
    assert error.line is not None and error.line >= line_of(text, "upstream:")
    assert "malformed YAML" in error.message
    assert str(error).startswith(f"{path}:{error.line}: ")


def test_unknown_top_level_key(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("severity: normal", "severity: normal\nowner: team-a")
    path = write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert (error.path, error.line) == (path, line_of(text, "owner:"))
    assert "unknown key 'owner'" in error.message
    assert "known: name, section, field, manifest" in error.message


def test_unknown_expectation_key(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("  uid: 1000", "  uid: 1000\n  cap_effective: []")
    path = write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert (error.path, error.line) == (path, line_of(text, "cap_effective"))
    assert "unknown expectation 'cap_effective'" in error.message
    assert "known: uid, gid, groups" in error.message
    assert "did you mean 'cap_eff'" in error.message


def test_missing_manifest_file(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("manifest: ../manifests/pod.yaml",
                                                 "manifest:\n  - ../manifests/pod.yaml\n  - nope.yaml")
    path = write(case_dir, "bad.yaml", text)
    _, errors = load_cases([case_dir])
    assert [(e.path, e.line) for e in errors] == [(path, line_of(text, "nope.yaml"))]
    assert "manifest file not found: nope.yaml" in errors[0].message


def test_bad_capability_name(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("cap_bnd: [CHOWN]", "cap_bnd:\n    - CHOWN\n    - NET_BIND")
    path = write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert (error.path, error.line) == (path, line_of(text, "- NET_BIND"))
    assert "bad capability 'NET_BIND' in expect.cap_bnd" in error.message
    assert "NET_BIND_SERVICE" in error.message


def test_bad_value_points_at_its_line(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("severity: normal", "severity: urgent")
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert error.line == line_of(text, "severity:")
    assert "known: blocker, critical, normal, minor" in error.message


def test_names_must_exist_in_the_manifest(case_dir: Path):
    text = (GOOD_CASE.format(name="bad").replace("container: app", "container: web")
            .replace("/data:", "/srv:"))
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)  # the container is checked first; its mounts are then unknown
    assert error.line == line_of(text, "container:")
    assert "no container 'web'" in error.message


def test_volume_must_be_a_mount_of_the_container(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("/data:", "/srv:")
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert error.line == line_of(text, "/srv:")
    assert "/srv is not a mountPath of container app" in error.message


def test_rejected_outcome_needs_a_reason_or_message(case_dir: Path):
    text = GOOD_CASE.format(name="bad") + "outcome:\n  status: rejected\n"
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert error.line == line_of(text, "outcome:")
    assert "needs a reason or a message" in error.message


def test_malformed_manifest_points_into_the_manifest(case_dir: Path):
    broken = write(case_dir.parent / "manifests", "broken-pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [oops\n")
    write(case_dir, "bad.yaml", GOOD_CASE.format(name="bad").replace("pod.yaml", "broken-pod.yaml"))
    error = only_error(case_dir)
    assert error.path == broken and error.line is not None
    assert "malformed YAML" in error.message


def test_duplicate_names_and_keys(case_dir: Path):
    write(case_dir, "a.yaml", GOOD_CASE.format(name="same"))
    text = GOOD_CASE.format(name="same")
    path_b = write(case_dir, "b.yaml", text)
    cases, errors = load_cases([case_dir])
    assert [c.name for c in cases] == ["same"]
    assert [(e.path, e.line) for e in errors] == [(path_b, line_of(text, "name:"))]
    assert "duplicate case name 'same'" in errors[0].message


def test_one_bad_file_does_not_stop_the_good_ones(case_dir: Path):
    write(case_dir, "a-good.yaml", GOOD_CASE.format(name="first"))
    write(case_dir, "b-broken.yaml", "name: [\n")
    write(case_dir, "c-bad.yaml", GOOD_CASE.format(name="third").replace("uid: 1000", "uid: root"))
    write(case_dir, "d-good.yaml", GOOD_CASE.format(name="fourth"))
    cases, errors = load_cases([case_dir])
    assert [c.name for c in cases] == ["first", "fourth"]
    assert sorted(e.path.name for e in errors) == ["b-broken.yaml", "c-bad.yaml"]


# --- seccomp profiles: installed, or meant to be missing --------------------

LOCALHOST_POD = POD.replace("spec:\n", "spec:\n  securityContext:\n    seccompProfile:\n"
                            "      type: Localhost\n      localhostProfile: profiles/absent.json\n", 1)


def test_localhost_profile_must_be_listed(case_dir: Path):
    write(case_dir.parent / "manifests", "pod.yaml", LOCALHOST_POD)
    text = GOOD_CASE.format(name="bad")
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert "the pod uses Localhost seccomp profile 'profiles/absent.json'" in error.message
    assert "{missing: true}" in error.message


def test_profile_meant_to_be_missing(case_dir: Path):
    write(case_dir.parent / "manifests", "pod.yaml", LOCALHOST_POD)
    write(case_dir.parent / "manifests", "other.json", '{"defaultAction": "SCMP_ACT_ALLOW"}')
    write(case_dir, "good.yaml", GOOD_CASE.format(name="good") + (
        "seccomp_profiles:\n"
        "  profiles/absent.json: {missing: true}\n"
        "  profiles/other.json: ../manifests/other.json\n"))
    cases, errors = load_cases([case_dir])
    assert errors == []
    [case] = cases
    assert case.seccomp_profiles == {"profiles/other.json": (case_dir.parent / "manifests" / "other.json").resolve()}
    assert case.missing_seccomp_profiles == {"profiles/absent.json"}


def test_missing_is_only_true(case_dir: Path):
    write(case_dir.parent / "manifests", "pod.yaml", LOCALHOST_POD)
    text = GOOD_CASE.format(name="bad") + "seccomp_profiles:\n  profiles/absent.json: {missing: false}\n"
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert error.line == line_of(text, "profiles/absent.json")
    assert "must be true" in error.message


def test_a_missing_profile_cannot_be_installed_by_another_case(case_dir: Path):
    write(case_dir.parent / "manifests", "pod.yaml", LOCALHOST_POD)
    write(case_dir.parent / "manifests", "absent.json", "{}")
    installs = write(case_dir, "a.yaml", GOOD_CASE.format(name="installs") +
                     "seccomp_profiles:\n  profiles/absent.json: ../manifests/absent.json\n")
    text = GOOD_CASE.format(name="needs-it-missing") + "seccomp_profiles:\n  profiles/absent.json: {missing: true}\n"
    path = write(case_dir, "b.yaml", text)
    cases, errors = load_cases([case_dir])
    assert [c.name for c in cases] == ["installs"]
    assert [(e.path, e.line) for e in errors] == [(path, line_of(text, "profiles/absent.json"))]
    assert f"meant to be missing, but {installs} installs it" in errors[0].message


# --- one error per problem, all of them, at their lines --------------------

def test_every_problem_of_a_file_is_reported_once(case_dir: Path):
    text = (GOOD_CASE.format(name="bad")
            .replace("severity: normal", "sevrity: normal")   # a typo: unknown, not also "missing"
            .replace("  uid: 1000", "  uid: -1\n  seccomp: filter")
            + "outcome: {status: crashing}\n"
            + "variants:\n  - name: a\n    storage: hostpath\n  - name: a\n")
    write(case_dir, "bad.yaml", text)
    _, errors = load_cases([case_dir])
    got = [(e.line, e.message.split(";")[0]) for e in errors]
    assert got == [
        (line_of(text, "sevrity:"), "unknown key 'sevrity'"),
        (line_of(text, "uid: -1"), "expect.uid must be a non-negative integer ID, not -1"),
        (line_of(text, "seccomp: filter"), "bad expect.seccomp 'filter'"),
        (line_of(text, "outcome:"), "a crashing outcome needs a reason, message or logs substring"),
        (line_of(text, "storage: hostpath"), "bad variants.0.storage 'hostpath'"),
        (len(text.splitlines()), "duplicate variant name 'a'"),  # found while the schema objects
    ], "\n".join(map(str, errors))
    assert "did you mean 'severity'?" in errors[0].message
    assert "did you mean 'hostPath'?" in errors[-2].message


def test_all_refused_capability_forms(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("cap_bnd: [CHOWN]", "cap_bnd:\n    - ALL\n    - CAP_CHOWN")
    write(case_dir, "bad.yaml", text)
    _, errors = load_cases([case_dir])
    assert [e.line for e in errors] == [line_of(text, "- ALL"), line_of(text, "- CAP_CHOWN")]
    assert "'ALL' in expect.cap_bnd is a pod-spec keyword, not a capability" in errors[0].message
    assert "did you mean 'CHOWN'?" in errors[1].message


def test_values_are_converted_by_their_kind(case_dir: Path):
    text = GOOD_CASE.format(name="good").replace(
        "  uid: 1000", "  uid: 1000\n  groups: [4000, 10]\n  seccomp: filtered\n  no_new_privs: true\n"
                       "  lsm_label: 'a.*'")
    write(case_dir, "good.yaml", text)
    [case], errors = load_cases([case_dir])
    assert errors == []
    assert case.expect["groups"] == [10, 4000]
    assert case.expect["seccomp"] == 2
    assert case.expect["no_new_privs"] is True and case.expect["lsm_label"] == "a.*"


def test_when_unsupported_needs_skip_unless(case_dir: Path):
    text = GOOD_CASE.format(name="bad") + "when_unsupported: {status: rejected, reason: AppArmor}\n"
    write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert (error.line, error.message) == (line_of(text, "when_unsupported:"), "when_unsupported needs skip_unless")


def test_schema_line_keeps_line_numbers(case_dir: Path):
    text = ("# yaml-language-server: $schema=../../secctx/schema/case.schema.json\n"
            + GOOD_CASE.format(name="bad").replace("severity: normal", "severity: urgent"))
    write(case_dir, "bad.yaml", text)
    assert only_error(case_dir).line == line_of(text, "severity:")


def test_kubernetes_since_loads_and_says_which_versions_lack_it(case_dir: Path):
    text = GOOD_CASE.format(name="new").replace(
        "severity: normal", "severity: normal\nkubernetes: {since: v1.35, why: Gate is beta and off}")
    write(case_dir, "new.yaml", text)
    [case] = load_cases([case_dir])[0]
    assert case.available.since == "v1.35"
    assert case.available.lacks("v1.34.4") and case.available.lacks("v1.34.4+k3s1")
    assert not case.available.lacks("v1.35.0") and not case.available.lacks("v1.40.1")


@pytest.mark.parametrize("kubernetes, message", [
    ("{since: '1.35', why: x}", "kubernetes.since must be a minor version like v1.35, not '1.35'"),
    ("{since: v1.35.4, why: x}", "kubernetes.since must be a minor version like v1.35"),
    ("{since: v1.35}", "missing required key 'why' in kubernetes"),
])
def test_a_bad_kubernetes_availability_is_refused_with_its_line(case_dir: Path, kubernetes, message):
    text = GOOD_CASE.format(name="bad").replace("severity: normal",
                                                f"severity: normal\nkubernetes: {kubernetes}")
    path = write(case_dir, "bad.yaml", text)
    error = only_error(case_dir)
    assert (error.path, error.line) == (path, line_of(text, "kubernetes:"))
    assert message in error.message


def test_an_invalid_outcome_needs_the_api_servers_message(case_dir: Path):
    text = GOOD_CASE.format(name="bad").replace("severity: normal",
                                                "severity: normal\noutcome: {status: invalid}")
    write(case_dir, "bad.yaml", text)
    assert only_error(case_dir).message == "missing required key 'message' in outcome"
