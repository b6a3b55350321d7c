"""The report's categories and the message prefixes they key on: one home.

Every failure or skip message the suite writes starts with one of these
prefixes, so Allure (categories.json) files it where a reader looks first.
"""
from __future__ import annotations

import re

NOT_ENFORCED = "NOT ENFORCED"  # an observed value differs from what Kubernetes promises
ENVIRONMENT_CANNOT_ENFORCE = "ENVIRONMENT CANNOT ENFORCE"  # the node lacks the kernel feature
INFRASTRUCTURE = "INFRASTRUCTURE"  # the cluster, the images or the user's input
TIMEOUT = "TIMEOUT"  # a bounded wait ran out
NOT_AVAILABLE = "NOT AVAILABLE"  # the Kubernetes version does not serve the feature (yet)
# Said by a skip whose RuntimeClass the suite added but this host cannot run (gVisor's
# runsc without the kernel features it needs): one line per runtime in the report.
RUNTIME_CANNOT_RUN = "this host cannot run it"
# Said by a skip of what the node cannot enforce, after every other check held.
OTHERS_HOLD = "every other field of this case was checked and holds"
PREFIXES = (NOT_ENFORCED, ENVIRONMENT_CANNOT_ENFORCE, INFRASTRUCTURE, TIMEOUT, NOT_AVAILABLE)
# What no prefix and no report category names (secctx.report.summary files every test under one):
TEST_FAILURE = "TEST FAILURE"  # an assertion outside the verdict, an error in the suite's code
SKIPPED = "SKIPPED"  # a skip whose reason names no category


def not_enforced(message: str) -> str:
    return f"{NOT_ENFORCED}: {message}"


def infrastructure(message: str) -> str:
    return f"{INFRASTRUCTURE}: {message}"


def cannot_enforce(message: str) -> str:
    return f"{ENVIRONMENT_CANNOT_ENFORCE}: {message}"


def runtime_cannot_run(runtime: str, problem: str) -> str:
    return cannot_enforce(f"{problem} (the suite added RuntimeClass {runtime}; {RUNTIME_CANNOT_RUN})")


def timeout(message: str) -> str:
    return f"{TIMEOUT}: {message}"


def not_available(kubernetes_version: str, why: str) -> str:
    """'NOT AVAILABLE: not available in v1.34 (ImageVolume is ...)': the minor version only."""
    minor = ".".join(kubernetes_version.split(".")[:2])
    return f"{NOT_AVAILABLE}: not available in {minor} ({why})"


# The report category (below) each prefix stands for, in CATEGORIES' order.
_BY_NAME = {"Runtime did not enforce": NOT_ENFORCED,
            "Runtime cannot run on this host": ENVIRONMENT_CANNOT_ENFORCE,
            "Environment cannot enforce": ENVIRONMENT_CANNOT_ENFORCE,
            "Not available in this version": NOT_AVAILABLE, "Timeouts": TIMEOUT,
            "Infrastructure": INFRASTRUCTURE}

# Regexes work in Allure 2 (Java) and Allure 3 (JavaScript): no inline flags.
CATEGORIES = [
    {"name": "Runtime did not enforce", "matchedStatuses": ["failed"],
     "messageRegex": rf"[\s\S]*{NOT_ENFORCED}[\s\S]*",
     "description": "An observed value differs from what Kubernetes promises: a product defect."},
    {"name": "Runtime cannot run on this host", "matchedStatuses": ["skipped"],
     "messageRegex": rf"[\s\S]*{RUNTIME_CANNOT_RUN}[\s\S]*",
     "description": "A RuntimeClass the suite added to the kind nodes cannot start a container "
                    "on this host; every test under it is skipped with the runtime's own error."},
    {"name": "Environment cannot enforce", "matchedStatuses": ["skipped"],
     "messageRegex": rf"(?![\s\S]*{RUNTIME_CANNOT_RUN})[\s\S]*{ENVIRONMENT_CANNOT_ENFORCE}[\s\S]*",
     "description": "The node lacks the kernel feature (SELinux, AppArmor); the reason says which."},
    {"name": "Not available in this version", "matchedStatuses": ["skipped"],
     "messageRegex": rf"[\s\S]*{NOT_AVAILABLE}[\s\S]*",
     "description": "The cluster's Kubernetes version does not serve the feature (or not by "
                    "default); the reason names the feature gate and its stage."},
    {"name": "Timeouts", "matchedStatuses": ["failed", "broken"],
     "messageRegex": rf"[\s\S]*({TIMEOUT}|WaitTimeout|Timeout|timed out)[\s\S]*"},
    {"name": "Infrastructure", "matchedStatuses": ["broken", "failed"],
     "messageRegex": rf"[\s\S]*({INFRASTRUCTURE}|ClusterError|EngineError|ApiException|"
                     r"ErrImagePull|ImagePullBackOff|ErrImageNeverPull|MaxRetryError)[\s\S]*"},
]

# "Failed: NOT ENFORCED: ...", "RunStopped: INFRASTRUCTURE: ...", "Skipped: NOT AVAILABLE: ...".
_LEADING = re.compile(r"(?:[\w.]+: )?(" + "|".join(map(re.escape, PREFIXES)) + "):")


def category(status: str, message: str) -> str | None:
    """The category of a test's outcome (passed, failed, error, skipped) from its message
    (the exception as `Type: message`): the prefix it starts with, which the suite wrote;
    else the first report category whose statuses and message regex match, as Allure
    files it (an ApiException, a WaitTimeout); else TEST_FAILURE or SKIPPED. None for a
    passed test. A prefix wins over the regexes: "INFRASTRUCTURE: ... ConnectTimeoutError"
    is infrastructure, not a timeout."""
    if status == "passed":
        return None
    lead = _LEADING.match(message)
    if lead:
        return lead.group(1)
    statuses = {"skipped"} if status == "skipped" else {"failed", "broken"}
    for entry in CATEGORIES:
        if statuses & set(entry["matchedStatuses"]) and re.fullmatch(entry["messageRegex"], message):
            return _BY_NAME[entry["name"]]
    return SKIPPED if status == "skipped" else TEST_FAILURE


# Labels the suite writes (secctx.report) for the report's verdict page (secctx.report.verdictpage).
NODE_LABEL = "secctx.node"  # the node a case's pod ran on
SELF_CHECK_EPIC = "Suite self-checks"  # case files valid; not a verdict on the cluster
