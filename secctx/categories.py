"""The report's categories and the message prefixes they key on: one home.

Every failure or skip message the suite writes starts with one of these
prefixes, so Allure (categories.json) files it where a reader looks first.
"""
from __future__ import annotations

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
