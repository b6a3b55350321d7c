"""What a person reads in the report: titles, parameter values, failure texts, reprs."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from allure_commons.utils import represent
from kubernetes import client

from secctx import report, verdict
from secctx.cases import load_cases
from secctx.core.paths import CASES
from secctx.kube import Kube
from secctx.oracle.nodefacts import Environment
from secctx.run.session import Suite

CASES_BY_NAME = {case.name: case for case in load_cases([CASES])[0]}


@pytest.mark.parametrize("name, storage, title", [
    ("secure-pod", None, "secure-pod: runAsUser 1000 / runAsGroup 3000 / fsGroup 2000 +2 more"),
    ("hardened-pod", None, "hardened-pod: runAsUser 1000 / runAsGroup 1000 / fsGroup 1000 +7 more"),
    ("fsgroup-demo", "local",
     "fsgroup-demo: fsGroup 2000 / fsGroupChangePolicy OnRootMismatch (local storage)"),
    ("fsgroup-demo", "default",
     "fsgroup-demo: fsGroup 2000 / fsGroupChangePolicy OnRootMismatch (default storage)"),
    ("network-debug-pod", None,
     "network-debug-pod: runAsNonRoot false / capabilities.drop ALL / capabilities.add NET_RAW,NET_ADMIN"),
])
def test_case_title_names_case_fields_and_values(name, storage, title):
    assert report.case_title(CASES_BY_NAME[name], storage) == title


@pytest.mark.parametrize("name, title", [
    # the container under test, not the init container (runAsUser 0), decides
    ("troubleshooting-fix-permissions", "troubleshooting-fix-permissions: runAsUser 1000"),
    ("secure-app", "secure-app: runAsUser 10000 / runAsGroup 10000 / fsGroup 10000 +5 more"),  # Deployment
    ("custom-seccomp-pod", "custom-seccomp-pod: seccompProfile Localhost profiles/custom-profile.json"),
    ("selinux-pod", "selinux-pod: seLinuxOptions system_u:system_r:container_t:s0:c123,c456"),
    ("apparmor-pod", "apparmor-pod: container.apparmor.security.beta.kubernetes.io/app runtime/default"),
    ("troubleshooting-root-image", "troubleshooting-root-image: runAsNonRoot true"),
])
def test_case_title_reads_every_kind_of_field(name, title):
    assert report.case_title(CASES_BY_NAME[name]) == title


def test_case_title_shows_the_field_as_written_when_the_spec_sets_none_of_it():
    case = dataclasses.replace(CASES_BY_NAME["secure-pod"], field="procMount (Default)")
    assert report.case_title(case) == "secure-pod: procMount (Default)"


def test_every_real_case_has_a_short_title_naming_it():
    for case in CASES_BY_NAME.values():
        title = report.case_title(case, "local")
        assert title.startswith(case.name + ": ") and title.endswith(" (local storage)")
        assert len(title) <= 120, title


def test_plain_parameter_values_show_without_quotes():
    assert represent("v1.37.2") == "'v1.37.2'"  # why Plain exists
    assert represent(report.Plain("v1.37.2")) == "v1.37.2"
    assert str(report.Plain("secure-pod.yaml")) == "secure-pod.yaml"


def test_plain_parameters_re_sets_only_str_values(monkeypatch):
    seen = []
    monkeypatch.setattr(report.allure.dynamic, "parameter", lambda name, value: seen.append(
        (name, represent(value))))
    report.plain_parameters({"manifest": "secure-pod.yaml", "preexisting_gid": 0,
                             "secctx_recipe_case": SimpleNamespace()})
    assert seen == [("manifest", "secure-pod.yaml")]


def test_verdict_failure_is_the_message_alone():
    checks = [verdict.Check("uid", 1000, 0, "runAsUser 1000"), verdict.Check("gid", 3000, 3000, "runAsGroup")]
    with pytest.raises(pytest.fail.Exception) as failed:
        verdict.assert_holds(SimpleNamespace(cannot_enforce=None), checks)
    assert failed.value.pytrace is False
    assert str(failed.value) == ("NOT ENFORCED: 1 of 2 checks differ:\n"
                                 "FAIL uid: expected 1000, observed 0  (runAsUser 1000)")


def test_require_fails_without_traceback_only_when_false():
    verdict.require(True, "NOT ENFORCED: never shown")
    with pytest.raises(pytest.fail.Exception) as failed:
        verdict.require([], "NOT ENFORCED: id printed 'uid=0'")
    assert failed.value.pytrace is False and str(failed.value) == "NOT ENFORCED: id printed 'uid=0'"


def test_suite_case_and_kube_reprs_are_short():
    suite = Suite(kube=SimpleNamespace(), cluster=SimpleNamespace(), run_id="3f2a1b2c4d5e",
                  env=Environment(kubernetes_version="v1.37.2"), worker="gw1")
    assert repr(suite) == "<suite run 3f2a1b2c4d5e, Kubernetes v1.37.2, worker gw1>"
    assert repr(CASES_BY_NAME["secure-pod"]) == "<case secure-pod (secure-pod.yaml)>"
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    assert repr(Kube(client.ApiClient(configuration))) == "<kube https://127.0.0.1:6443>"
