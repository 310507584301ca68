#!/usr/bin/env bash
# Checks deploy/: every Kubernetes manifest against the API's schemas (kubernetes-validate
# --strict, for the oldest and newest Kubernetes we support), deploy/Dockerfile with hadolint,
# and deploy/compose.yaml against the Compose Specification (check-jsonschema).
# Exits non-zero on any invalid manifest, unknown kind or field, or Dockerfile finding.
#
# The tools come from PyPI (scripts/check-deploy.requirements.txt, all pinned) into a virtualenv
# under ${HERALD_TOOLS_DIR:-$HOME/.cache/herald/tools}, made on first use and reused after; it
# is rebuilt when the requirements file or the Python changes. Needs python3 and network access
# to PyPI the first time; nothing else.
#
# The kustomizations are rendered with `kustomize build` or `kubectl kustomize`, whichever is
# installed, and the rendered output is validated. With neither, each manifest file is
# validated as written (kustomization.yaml files are only parsed, *.patch.yaml files skipped, and
# the generated ConfigMap and Secret go unchecked). HERALD_DEPLOY_RENDERER=kustomize|kubectl|none
# forces a choice.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Kubernetes versions every manifest must be valid for: the oldest we support and the
# newest kubernetes-validate knows.
kubernetes_versions=(1.29.0 1.37.0)

requirements=scripts/check-deploy.requirements.txt
python=${PYTHON:-python3}

fail() { echo "check-deploy: $*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- Tools -----------------------------------------------------------------------------------

install_tools() {
  # shellcheck source=scripts/python-tools.sh
  source scripts/python-tools.sh
  python_tools deploy-check "$requirements" "kubernetes-validate and hadolint" || fail "the Python tools could not be installed"
}

# --- Kubernetes manifests ------------------------------------------------------------------

pick_renderer() {
  local choice=${HERALD_DEPLOY_RENDERER:-auto}
  case $choice in
    auto)
      if command -v kustomize >/dev/null 2>&1; then echo kustomize
      elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
        echo kubectl
      else echo none; fi ;;
    kustomize | kubectl | none) echo "$choice" ;;
    *) fail "HERALD_DEPLOY_RENDERER must be kustomize, kubectl or none, not '$choice'" ;;
  esac
}

# Prints, one per line, the files to validate, rendering each kustomization first if it can.
manifests_to_validate() {
  local renderer=$1 dir name
  # A copy, in which each overlay's *.env.example stands in for the *.env file that holds real
  # secrets on an operator's machine (git ignores it): the check never reads real secrets, and
  # works from a fresh clone.
  cp -R deploy/k8s "$work/k8s"
  while IFS= read -r -d '' example; do
    cp "$example" "${example%.example}"
  done < <(find "$work/k8s" -name '*.env.example' -print0)

  if [[ $renderer == none ]]; then
    find "$work/k8s" -type f \( -name '*.yaml' -o -name '*.yml' \) \
      ! -name 'kustomization.yaml' ! -name 'kustomization.yml' ! -name '*.patch.yaml' | sort
    return 0
  fi
  while IFS= read -r kustomization; do
    dir=$(dirname "$kustomization")
    name=${dir#"$work/k8s/"}
    name=${name//\//-}.rendered.yaml
    case $renderer in
      kustomize) kustomize build "$dir" >"$work/$name" ;;
      kubectl) kubectl kustomize "$dir" >"$work/$name" ;;
    esac || fail "kustomize could not render ${dir#"$work/"}"
    echo "$work/$name"
  done < <(find "$work/k8s" -name kustomization.yaml | sort)
}

validate_manifests() {
  local renderer files=() output status=0 problems count
  renderer=$(pick_renderer)
  if [[ $renderer == none ]]; then
    echo "== kubernetes-validate --strict (no kustomize or kubectl: the files as written)"
    # Without a renderer, at least make sure every kustomization parses.
    find deploy/k8s -name 'kustomization.yaml' -exec "$venv/bin/python" -c '
import sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        if not isinstance(yaml.safe_load(f), dict):
            sys.exit(f"{path}: not a YAML mapping")
' {} +
  else
    echo "== kubernetes-validate --strict (rendered with $renderer kustomize)"
  fi
  # Through a file, not a pipe, so that a failure to render stops the script.
  manifests_to_validate "$renderer" >"$work/files"
  mapfile -t files <"$work/files"
  (( ${#files[@]} > 0 )) || fail "no manifests found under deploy/k8s"

  local version_flags=()
  for version in "${kubernetes_versions[@]}"; do version_flags+=(-k "$version"); done
  output=$("$venv/bin/kubernetes-validate" --strict "${version_flags[@]}" "${files[@]}" 2>&1) \
    || status=$?
  output=${output//"$work/"/}
  # kubernetes-validate only warns (and exits 0) on a kind or apiVersion it has no schema for,
  # such as a misspelt kind: count anything but an INFO line as a failure.
  problems=$(grep -v '^INFO ' <<<"$output" || true)
  count=$(grep -c '^INFO ' <<<"$output" || true)
  if (( status != 0 )) || [[ -n $problems ]]; then
    echo "$problems" >&2
    fail "invalid Kubernetes manifests (see above)"
  fi
  (( count > 0 )) || fail "kubernetes-validate checked no resource"
  echo "   ${#files[@]} files, $count resource checks (Kubernetes ${kubernetes_versions[*]}): valid"
}

# --- Dockerfile ------------------------------------------------------------------------------

lint_dockerfile() {
  echo "== hadolint deploy/Dockerfile"
  "$venv/bin/hadolint" --no-color --config deploy/.hadolint.yaml deploy/Dockerfile \
    || fail "hadolint found problems in deploy/Dockerfile (see above)"
  echo "   no findings"
}

# --- Compose file ----------------------------------------------------------------------------

validate_compose() {
  echo "== check-jsonschema deploy/compose.yaml (the Compose Specification)"
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml \
    || fail "deploy/compose.yaml does not follow the Compose Specification (see above)"
  # Every file the stack mounts is there.
  local mounted
  for mounted in deploy/prometheus.yml deploy/otel-collector.yaml; do
    [[ -f $mounted ]] || fail "deploy/compose.yaml mounts $mounted, which is missing"
  done
}

install_tools
validate_manifests
lint_dockerfile
validate_compose
echo "check-deploy: OK"
