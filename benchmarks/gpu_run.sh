#!/usr/bin/env bash
# One-shot GPU check and benchmark. From the repo root, with .whl/ carried:
#     bash benchmarks/gpu_run.sh
# Installs keras 3.15.1 + namex + optree from .whl/ (no index, no deps; the
# machine already has jax, torch, numpy, h5py, absl-py, rich, ml-dtypes,
# packaging), prints the environment, checks the fused Triton loops and the
# golden cases on the GPU, then runs bench_elm.py once per configuration so
# that a timeout loses one table, not all. TensorFlow is not in the GPU image
# and its wheel is too large to carry, so only JAX and torch run. Writes into
# $OUT. Always exits 0; failed steps are listed.
# .whl/ is made once with `pip download --no-deps --only-binary=:all:
# --python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl
# keras==3.15.1 namex==0.1.0 optree==0.20.0`.
set -u
cd "$(dirname "$0")/.." || exit 0
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
failed=()

echo "== install wheels"
ls -l .whl/
if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl; then
    export PYTHONPATH=/tmp/site:$PWD
else
    echo "FAILED: wheel install"
    failed+=("wheel-install")
    export PYTHONPATH=$PWD
fi

echo "== environment"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    echo "nproc: $(nproc)"
    KERAS_BACKEND=jax timeout -k 5 60 python3 - <<'EOF'
import sys
print("python", sys.version.split()[0])
try:
    import jax
    print("jax", jax.__version__, "devices:", jax.devices())
    print("jax sees GPU:", any(d.platform == "gpu" for d in jax.devices()))
except Exception as e:
    print("jax FAILED:", repr(e))
try:
    import torch
    print("torch", torch.__version__, "cuda available:",
          torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:
    print("torch FAILED:", repr(e))
try:
    import keras, namex, optree, keras_elm  # noqa: F401
    print("keras", keras.__version__, "backend", keras.backend.backend(),
          "optree", optree.__version__)
except Exception as e:
    print("keras/keras_elm import FAILED:", repr(e))
EOF
} 2>&1 | tee "$OUT/env.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("env-check")

BACKENDS=${GPU_BACKENDS:-jax,torch}
echo "== correctness on the GPU ($BACKENDS)"
# The fused Triton loops against per-step autograd, then the golden cases
# through the fast and generic paths (JAX with float32 matmuls: its GPU
# default is TF32). Everything goes to one log: at most 8 files come back.
{
    if [[ $BACKENDS == *torch* ]] && [ -z "${SKIP_TRITON_CHECK:-}" ]; then
        KERAS_BACKEND=torch timeout -k 5 80 python3 tests/triton_check.py cuda --quick
        echo "triton_check rc=$?"
    fi
    for backend in ${BACKENDS//,/ }; do
        echo "-- golden on $backend"
        KERAS_BACKEND=$backend JAX_DEFAULT_MATMUL_PRECISION=highest \
            timeout -k 5 80 python3 -m pytest -q -p no:warnings \
            -p no:cacheprovider --tb=short tests/test_golden.py \
            tests/test_triton_core.py
        echo "golden $backend rc=$?"
    done
} > "$OUT/checks.log" 2>&1
grep -E "rc=|cases match|passed|failed" "$OUT/checks.log"
grep -q "rc=[1-9]" "$OUT/checks.log" && failed+=("checks")

echo "== benchmarks"
deadline=$(( $(date +%s) + ${BENCH_BUDGET:-280} ))
: > "$OUT/bench.log"
# name:config:models:cap_seconds[:env]
RUNS=${GPU_RUNS:-"
dm100:neuronio_dm100_b8:elm_fast,elm_generic,lstm,gru,torch_per_step_loop:120
pathx:pathx:elm_fast,lstm,gru,torch_per_step_loop:120
pathx_no_triton:pathx:elm_fast:60:KERAS_ELM_TRITON=0
"}
tables=$(mktemp -d)
for spec in $RUNS; do
    IFS=: read -r name cfg models cap extra <<< "$spec"
    left=$(( deadline - $(date +%s) ))
    t=$(( cap < left ? cap : left ))
    if [ "$t" -lt 20 ]; then
        echo "SKIPPED: $name (only ${left}s left)" | tee -a "$OUT/bench.log"
        failed+=("$name(skipped)")
        continue
    fi
    backends=$BACKENDS
    if [ "$name" = pathx_no_triton ]; then
        [[ $BACKENDS == *torch* ]] || continue
        backends=torch
    fi
    echo "-- $name (timeout ${t}s) $(date +%T)" | tee -a "$OUT/bench.log"
    start=$(date +%s)
    env $extra timeout -k 10 "$t" python3 benchmarks/bench_elm.py --configs "$cfg" \
        --backends "$backends" --models "$models" --repeats 5 \
        --output "$tables/$name.md" 2>&1 \
        | grep -v -i "warning\|absl" | tee -a "$OUT/bench.log"
    rc=${PIPESTATUS[0]}
    echo "-- $name rc=$rc in $(( $(date +%s) - start ))s" | tee -a "$OUT/bench.log"
    [ "$rc" -eq 0 ] || failed+=("$name(rc=$rc)")
    if [ -e "$tables/$name.md" ]; then
        { echo "## $name"; cat "$tables/$name.md"; echo; } >> "$OUT/RESULTS_gpu.md"
    fi
done

echo "== Path-X training for a fixed time"
# The example as a user runs it, on generated data (every core), at the
# paper's batch unless PATHX_BATCH says otherwise; the [timing] line gives
# the measured step time and the epoch it implies. Capped at PATHX_SECONDS.
{
    KERAS_BACKEND=jax timeout -k 10 "${PATHX_SECONDS:-240}" python3 \
        examples/pathfinder_x.py --num-samples "${PATHX_SAMPLES:-8000}" \
        --epochs 1 --batch-size "${PATHX_BATCH:-768}" \
        --remat-chunk-size "${PATHX_REMAT:-128}" --output-dir /tmp/pathx_run
    echo "pathx_train rc=$?"
} 2>&1 | grep -v -i "warning\|absl" | tail -40 > "$OUT/pathx_train.log"
grep -E "timing|rc=|accuracy|data:" "$OUT/pathx_train.log"
grep -q "pathx_train rc=0" "$OUT/pathx_train.log" || failed+=("pathx_train")

echo "== the other tasks, each trained for a fixed time"
# As users run them, with the paper's batch, for TASK_MINUTES of training
# (--max-minutes), then the evaluation: ListOps at LRA's lengths on
# generated trees, SHD-Adding and NeuronIO on their synthetic stand-ins.
# NeuronIO's metrics need scikit-learn and matplotlib; where the image
# lacks them, its [timing] line still gives the step time.
for spec in ${TASK_RUNS:-"listops:--num-samples 20000 shd_adding: neuronio:--steps-per-epoch 200"}; do
    name=${spec%%:*}
    flags=${spec#*:}
    {
        KERAS_BACKEND=jax timeout -k 10 "${TASK_SECONDS:-240}" python3 \
            "examples/$name.py" --max-minutes "${TASK_MINUTES:-2}" \
            --output-dir "/tmp/${name}_run" ${flags//,/ }
        echo "${name}_train rc=$?"
    } 2>&1 | grep -v -i "warning\|absl" | tail -40 > "/tmp/${name}_train.log"
    cat "/tmp/${name}_train.log" >> "$OUT/tasks_train.log"  # one file back
    grep -E "timing|rc=|accuracy|AUC|data:" "/tmp/${name}_train.log"
    grep -q "${name}_train rc=0" "/tmp/${name}_train.log" || failed+=("${name}_train")
done

echo "== summary"
if [ "${#failed[@]}" -eq 0 ]; then
    echo "all steps succeeded"
else
    echo "FAILED steps: ${failed[*]}"
fi
ls -l "$OUT"
exit 0
