"""Every bound the suite puts on a wait or a command, named, with its reason.

One home: a wait takes its default from here, a caller that knows better passes its
own. The numbers were measured on a 2-core host with cgroup v1 (slow: runc's
'unable to freeze' sandbox failures are retried by the kubelet 10-15 s later).
"""
from __future__ import annotations

# A case pod, apply to its outcome: image already on the node, so start-up is the
# sandbox, plus at most two kubelet retries of a transient sandbox failure.
POD_START = 60
# The default ServiceAccount of a new namespace (the token controller adds it in ~1 s).
SERVICE_ACCOUNT = 30
# One exec of the probe or a helper command in a running container.
EXEC = 30
# A helper command on the node that reads the image store (crictl over every image).
NODE_EXEC = 60
# A Deployment's replicas Ready (a case's workload; system deployments have their own).
DEPLOYMENT = 90
# The node helper pod and each runtime probe: schedule, start, probe, under load.
NODE_FACTS = 90
# A fresh kind cluster's CoreDNS and local-path-provisioner (the latter restarts once
# while the kubernetes Service is not routed yet).
SYSTEM_DEPLOYMENTS = 180
# Every namespace of the run gone at the end of the session.
SESSION_STOP = 60
# The scheduler's backstop for one case's result: its own waits are bounded, this
# only catches a bug that would otherwise hang the test.
CASE_BACKSTOP = 600

# A VM node under emulation (cluster.vmnode, qemu TCG: 10-25 s apply to Running at load
# 2-5, far slower under load): waits where a VM node is in the cluster or a pod is
# pinned to one. The node helper and runtime probes (its first pod there took over 90 s
# at load 15), one exec there (a probe took over 30 s at load 40), a case's outcome
# (4 cases starting at once there, scheduler.START_SLOTS, at load 20-26: the sandbox
# alone 128 s, 9 of 12 pods not Ready in 180 s; each still ContainerCreating).
EMULATED_NODE_FACTS = 300
EMULATED_EXEC = 180
EMULATED_POD_START = 420
# A command that answers a question (a version, `docker inspect`, `kind get`): it answers
# in a second; 30 s leaves room for a host under load (core/run_command.py's default).
COMMAND_QUERY = 30.0

# --- commands: each a bound for one run of a tool (core/run_command.py) ---------------
# kind create cluster: node containers, kubeadm init, kind's own wait (60-120 s here).
KIND_CREATE = 300
# kind delete cluster, and exporting a failed create's node logs.
KIND_DELETE = 120
# Loading the workload images onto the nodes (kind load / ctr import, ~10 images).
IMAGE_LOAD = 300
# `kind build node-image --type release`: downloads a release's binaries and builds.
RELEASE_NODE_IMAGE = 3600
# A Go build of one component from its module (Kubernetes, CRI-O: 10-25 min cold on 2 cores).
GO_BUILD = 3600
# A docker build or save of one image (debootstrap inside it: minutes).
DOCKER = 1800
# The pull check: every node pulls every image the run needs.
PULL_CHECK = 300
# actionlint over the workflows (its first run builds it from its module).
LINT = 300
# The API server answering a new kubeconfig (preflight of an existing cluster).
API_PREFLIGHT = 5
# A new kind cluster's API server and nodes, after kind returned.
API_READY = 60
# dockerd started by the suite becoming ready.
ENGINE_START = 60
# The Go proxy's list of served Kubernetes versions.
VERSION_LIST = 60
# The VM node (qemu under TCG: everything in the guest runs ~3-20x slower).
VM_COMMAND = 120         # a command on the host for the VM (docker exec, ip, qemu-img)
VM_GUEST = 300           # a script in the guest through its agent
VM_KUBECTL = 60          # kubectl in the control plane about the VM's Node
VM_KUBECTL_QUERY = 30    # one read of the VM's Node object
VM_QEMU_START = 60       # qemu started and its agent socket there
VM_GUEST_PREPARE = 180   # the guest's containerd active after boot
VM_APT_DOWNLOAD = 600    # apt-get download of one Debian package for the disk image
VM_DISK_IMAGE = 1200     # build-image.sh: the disk image (2.5-5 min cold here)
VM_IMAGE_EXPORT = 600    # ctr images export on the control plane, and its docker cp
VM_IMAGE_IMPORT = 900    # ctr images import in the guest
