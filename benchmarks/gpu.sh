#!/usr/bin/env bash
# Every GPU measurement of the benchmarks in one call, in under 10 minutes.
#
# Assumes the project and jax with CUDA support are installed (pip install -e . "jax[cuda12]");
# installs nothing. Run from anywhere: bash benchmarks/gpu.sh [OUT_DIR] (default ./gpu-results).
# Writes OUT_DIR/<benchmark>.json (the benchmark's JSON) and OUT_DIR/<benchmark>.log (its
# stderr); each benchmark is bounded by `timeout`, and one that fails or runs out of time is
# reported at the end without stopping the others. Exit status: 0 when all succeeded.
set -uo pipefail

out_dir="$(realpath -m "${1:-./gpu-results}")"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code
mkdir -p "$out_dir"

backend="$(python -c 'import jax; print(jax.default_backend())' 2>"$out_dir/jax.log")"
if [[ "$backend" != "gpu" ]]; then
    echo "gpu.sh: jax sees no GPU (default backend: '${backend:-none}', see $out_dir/jax.log);" \
        "install jax with CUDA support on a machine with an NVIDIA GPU" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out_dir/nvidia-smi.csv" \
    2>/dev/null || true

failed=()
# name, seconds allowed, flags; the seconds add up to 570.
run() {
    local name="$1" seconds="$2"
    shift 2
    echo "gpu.sh: benchmarks.$name $* (at most ${seconds} s)" >&2
    if ! timeout "$seconds" python -m "benchmarks.$name" "$@" \
        >"$out_dir/$name.json" 2>"$out_dir/$name.log"; then
        failed+=("$name")
    fi
}

# Both neuron backends: one layer at each DSQN shape, the update and the acting forward; the
# launch counts only for one env per seed (the other counts need no GPU: benchmarks/README.md).
run neuron_backends 300 --quick --envs-per-seed 1
run update 100 --quick
run train 170 --quick

if ((${#failed[@]})); then
    echo "gpu.sh: failed or timed out: ${failed[*]} (see their .log in $out_dir)" >&2
    exit 1
fi
echo "gpu.sh: results in $out_dir" >&2
