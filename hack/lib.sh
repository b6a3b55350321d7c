# Shared set-up for hack/run.sh and hack/test.sh: host packages, the Python
# environment. Each step is a no-op when already done, so warm runs take seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SECCTX_VENV:-$ROOT/.venv}
PY=$VENV/bin/python

say() { printf '[secctx] %s\n' "$*" >&2; }

# Debian packages the offline build needs (the Docker engine, debootstrap for
# root filesystems, busybox for the small images, libseccomp for runc).
ensure_host_packages() {
  local wanted=(debootstrap busybox-static libseccomp-dev pkg-config gcc "$@")
  local missing=()
  command -v dpkg-query >/dev/null || { say "not a Debian host: install Docker, Go, debootstrap yourself"; return 0; }
  # A running engine (Docker CE on CI runners) is used as it is; else Debian's.
  if ! [[ -S /var/run/docker.sock ]] || ! command -v docker >/dev/null; then
    wanted+=(docker.io)
  fi
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { say "missing packages ${missing[*]}; install them (as root: apt-get install ${missing[*]})"; exit 2; }
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v go >/dev/null || [[ -x /usr/local/go/bin/go ]] || say "Go is not installed: the offline build needs it (online mode does not)"
  [[ -x /usr/local/go/bin/go ]] && export PATH=$PATH:/usr/local/go/bin
  return 0
}

# The virtual environment, pinned by constraints.txt; rebuilt when either file changes.
ensure_venv() {
  local stamp=$VENV/.secctx-stamp want
  want=$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)
  if [[ ! -x $PY || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    say "creating the Python environment in $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -c "$ROOT/constraints.txt" -e "${ROOT}[test]"
    echo "$want" > "$stamp"
  fi
}

# kubelet in a kind node rewrites a few host sysctls; put them back when the
# run ends, on a host whose engine we started.
restore_host() { "$PY" -m secctx host-restore || true; }
