# Shared set-up for hack/run.sh and hack/test.sh: the Python environment, then
# the host packages and the Docker engine the run's mode needs. Each step is a
# no-op when already done, so warm runs take seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SECCTX_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
APT_TIMEOUT=${SECCTX_APT_TIMEOUT:-900}  # seconds for apt-get update + install (a cold runner)

say() { printf '[secctx] %s\n' "$*" >&2; }

# The Debian packages (and whether a Docker engine) the run of these pytest
# options needs, as `python -m secctx host-needs` says (secctx/cluster/hostneeds.py:
# the mode is decided there, as set-up decides it). Installs what is missing,
# with sudo when not root. Sets NEEDS_ENGINE=yes|no.
ensure_host_packages() {
  local out kind rest name reason missing=() why=() sudo=()
  out=$("$PY" -m secctx host-needs "$@") || exit 2
  NEEDS_ENGINE=no
  while IFS=' ' read -r kind rest; do
    case $kind in
      engine) NEEDS_ENGINE=$rest ;;
      missing) IFS=$'\t' read -r name reason <<<"$rest"; missing+=("$name"); why+=("$name ($reason)") ;;
    esac
  done <<<"$out"
  if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
      local fix="install them as root (apt-get install ${missing[*]}), or give this user passwordless sudo"
      command -v sudo >/dev/null || { say "cannot install ${missing[*]}: not root and sudo is not installed; $fix"; exit 2; }
      sudo -n true 2>/dev/null || { say "cannot install ${missing[*]}: not root and sudo asks for a password (sudo -n failed); $fix"; exit 2; }
      sudo=(sudo -n)
    fi
    local list; list=$(printf '%s, ' "${why[@]}")
    say "installing ${list%, }${sudo:+ with sudo}"
    local apt=(timeout "$APT_TIMEOUT" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
               apt-get -o DPkg::Lock::Timeout=300 -qq)
    "${apt[@]}" update || { say "apt-get update failed or took over ${APT_TIMEOUT}s; install ${missing[*]} by hand"; exit 2; }
    "${apt[@]}" install -y "${missing[@]}" >/dev/null \
      || { say "apt-get install ${missing[*]} failed or took over ${APT_TIMEOUT}s; install them by hand"; exit 2; }
  fi
  if [[ $NEEDS_ENGINE == yes ]]; then
    [[ -x /usr/local/go/bin/go ]] && export PATH=$PATH:/usr/local/go/bin
    command -v go >/dev/null || say "Go is not installed: kind and the suite's own images are built with it (install Go 1.25+)"
  fi
  return 0
}

# The virtual environment, pinned by constraints.txt; rebuilt when either file changes.
ensure_venv() {
  local stamp=$VENV/.secctx-stamp want
  want=$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)
  if [[ ! -x $PY || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    say "creating the Python environment in $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -c "$ROOT/constraints.txt" -e "${ROOT}[test]"
    echo "$want" > "$stamp"
  fi
}

# A Docker engine when the mode needs one (ensure_host_packages decided).
ensure_engine() {
  [[ $NEEDS_ENGINE == yes ]] || return 0
  "$PY" -m secctx engine
  trap restore_host EXIT
}

# kubelet in a kind node rewrites a few host sysctls; put them back when the
# run ends, on a host whose engine we started.
restore_host() { "$PY" -m secctx host-restore || true; }
