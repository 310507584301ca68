# Sourced by the scripts that run Python tools from PyPI (check-deploy.sh, fuzz-api.sh):
# `python_tools NAME REQUIREMENTS LABEL` makes the virtualenv
# ${HERALD_TOOLS_DIR:-$HOME/.cache/herald/tools}/NAME with REQUIREMENTS (all pinned) installed,
# or reuses it; it is rebuilt when the requirements file or the Python changes. Sets `venv` to its
# path. Needs python3 (or $PYTHON) and network access to PyPI the first time; nothing else.
# Returns non-zero, with the reason on stderr, when it cannot.

python_tools() {
  local name=$1 requirements=$2 label=$3
  local tools_dir=${HERALD_TOOLS_DIR:-${HOME:-/tmp}/.cache/herald/tools}
  local python=${PYTHON:-python3}
  local pip_quiet=(-q --disable-pip-version-check --no-input)
  venv=$tools_dir/$name
  command -v "$python" >/dev/null 2>&1 || { echo "$python not found; install python3 (or set PYTHON)" >&2; return 1; }
  local want
  want="$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), *sys.version_info[:3])')
$(cat "$requirements")"
  mkdir -p "$tools_dir"
  # Two runs at once must not build the same virtualenv over each other: the lock is held until
  # the sourcing script exits.
  if command -v flock >/dev/null 2>&1; then
    local lock_fd
    exec {lock_fd}>"$tools_dir/.$name.lock"
    flock "$lock_fd"
  fi
  if [[ -f $venv/.installed && "$(cat "$venv/.installed")" == "$want" ]] \
    && "$venv/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  echo "== installing $label (PyPI) into $venv"
  rm -rf "$venv"
  local log
  log=$(mktemp)
  if ! "$python" -m venv "$venv" >"$log" 2>&1; then
    # Debian's python3 without the python3-venv package has no ensurepip: make the virtualenv
    # without pip and let the system's pip (22.3 or newer, for --python) put pip into it.
    rm -rf "$venv"
    if ! { "$python" -m venv --without-pip "$venv" \
        && "$python" -m pip "${pip_quiet[@]}" --python "$venv/bin/python" install pip; } \
        >>"$log" 2>&1; then
      cat "$log" >&2
      rm -rf "$venv" "$log"
      echo "cannot make a virtualenv with $python: install python3-venv (or python3-pip)" >&2
      return 1
    fi
  fi
  rm -f "$log"
  if ! "$venv/bin/python" -m pip "${pip_quiet[@]}" install -r "$requirements"; then
    echo "cannot install $label from PyPI (see above)" >&2
    return 1
  fi
  # Written last: an interrupted install leaves no marker and is redone next time.
  printf '%s' "$want" >"$venv/.installed"
}
