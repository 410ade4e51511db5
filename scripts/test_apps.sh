#!/usr/bin/env bash
# Tests of the MONAI Label app and the MONAI Deploy app, each in its own virtual environment (their pydicom majors
# conflict): .venv-label (PyPI's torch 2.15.0 and torchvision 0.29.2, a pair that loads together, with ".[label]")
# and .venv-deploy (CPU torch 2.13.0 with ".[deploy]"). The two run side by side; their logs are printed at the end.
# Usage: scripts/test_apps.sh [label] [deploy]   (default: both)
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(label deploy)
mkdir -p .apps-logs

build_and_test() {  # name, torch requirements...
    local name=$1
    shift
    local venv=".venv-$name"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install --quiet --upgrade pip || return 1
    "$venv/bin/python" -m pip install --quiet "$@" || return 1
    # one editable install at a time: both write medslip_monai.egg-info in this folder
    flock .apps-logs/install.lock "$venv/bin/python" -m pip install --quiet -e ".[$name,dev]" || return 1
    (ulimit -s 32768 2>/dev/null; "$venv/bin/python" -m pytest -q -p no:cacheprovider "tests_apps/$name")
}

declare -A pids
for target in "${targets[@]}"; do
    case $target in
        label) build_and_test label "torch==2.15.0" "torchvision==0.29.2" > .apps-logs/label.log 2>&1 & ;;
        deploy) build_and_test deploy "torch==2.13.0" > .apps-logs/deploy.log 2>&1 & ;;
        *) echo "unknown target $target (label, deploy)" >&2; exit 2 ;;
    esac
    pids[$target]=$!
done

status=0
for target in "${targets[@]}"; do
    if wait "${pids[$target]}"; then result=passed; else result=FAILED; status=1; fi
    echo "=== $target: $result ($(pwd)/.apps-logs/$target.log) ==="
    tail -n 40 ".apps-logs/$target.log"
done
exit $status
