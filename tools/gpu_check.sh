#!/usr/bin/env bash
# The whole GPU check in one command, sized for a short lease on a lent GPU machine:
# build for the card, the GPU tests, compute-sanitizer (memcheck + racecheck) on the CUDA tests,
# then `disenttalk bench` (ops, model jobs in fp32 and bf16, the denoiser step against
# torch.compile in COMPILE_MODE, default "default").
#
#   OUT=/some/dir DEADLINE_S=540 tools/gpu_check.sh
#   STAGES="tests ops model" TESTS="python_tests/test_film.py" tools/gpu_check.sh   # a subset
#
# STAGES (default: all): tests sanitize ops model model_bf16 model_tf32 compile; the build
# always runs.
# TESTS: test files for the tests stage, relative to the repository (default: the GPU files).
# OPS_SHAPES: shapes for the ops bench (default: all); COMPILE_MODE: see the compile stage.
#
# Every stage has a time limit derived from DEADLINE_S (seconds from the start), so the script
# ends, and its summary prints, before the caller's own limit. Logs, JSON and charts go to $OUT;
# the logs are packed into $OUT/logs.tar.gz at the end. Runs from /tmp so that the installed
# package, not the source folder, is imported.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/gpu_check}
DEADLINE_S=${DEADLINE_S:-540}
ARCH=${CUDA_ARCH:-90}
STAGES=" ${STAGES:-tests sanitize ops model model_bf16 model_tf32 compile} "
want() { [[ "$STAGES" == *" $1 "* ]]; }
mkdir -p "$OUT/logs"
L=$OUT/logs
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
T0=$(date +%s)
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
stage() { echo "=== $1 (t=$(( $(date +%s) - T0 )) s, $(left) s left)"; }
# limit <share of what is left, in %> [minimum seconds]
limit() { local l; l=$(( $(left) * $1 / 100 )); [ "$l" -lt "${2:-10}" ] && l=${2:-10}; echo "$l"; }
finish() {
  stage "done"
  tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$L"
  exit "${1:-0}"
}

stage "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  | tee "$L/env.txt"
python3 -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch',
torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" | tee -a "$L/env.txt"
nvcc --version | tail -1 | tee -a "$L/env.txt"

stage "build (sm_$ARCH)"
cd "$REPO"
# The build needs scikit-build-core >= 0.11 and pybind11 >= 2.12; where the machine's are older
# and wheels were carried in .whl/, use those (installs from .whl only, never from an index).
if ! python3 -c "import sys, scikit_build_core as s, pybind11 as p; from packaging.version import V\
ersion as V; sys.exit(V(s.__version__) < V('0.11') or V(p.__version__) < V('2.12'))" 2>/dev/null \
    && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  echo "using carried build tools: $(ls .whl)"
fi
if ! timeout "$(limit 40 60)" python3 -m pip install --no-build-isolation --no-deps -v . \
    -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCH" >"$L/build.log" 2>&1; then
  grep -E "error|Error" "$L/build.log" | head -30; tail -20 "$L/build.log"; finish 1
fi
grep -E "ptxas|Elapsed|Built" "$L/build.log" | tail -5
cd /tmp
disenttalk info 2>&1 | tee "$L/info.txt"

T="$REPO/python_tests"
OPS="$T/test_film.py $T/test_dwconv.py $T/test_region_attention.py $T/test_causal_cross_attention.py"
GPU_FILES="$OPS $T/test_rasterize.py $T/test_fast_denoiser.py $T/test_build_info.py \
  $T/test_sampling.py $T/test_denoiser.py $T/test_stream.py $T/test_thread_pool.py"

if [ -n "${TESTS:-}" ]; then
  GPU_FILES=$(for f in $TESTS; do printf '%s ' "$REPO/$f"; done)
fi

stage "GPU tests + compute-sanitizer (in parallel)"
budget=$(limit 45 90)
if want sanitize; then
  # Without the caching allocator every tensor is its own cudaMalloc, so memcheck sees the true
  # bounds of each buffer.
  (PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$budget" compute-sanitizer --tool memcheck \
    --error-exitcode 86 --print-limit 30 python3 -m pytest -q -p no:cacheprovider $OPS \
    "$T/test_rasterize.py" -k "cuda and not triton" >"$L/memcheck.log" 2>&1
   echo "memcheck exit $?" >>"$L/memcheck.log") &
  # racecheck only matters where kernels share memory: the depthwise convs and the attention.
  (timeout "$budget" compute-sanitizer --tool racecheck --error-exitcode 86 --print-limit 30 \
    python3 -m pytest -q -p no:cacheprovider "$T/test_dwconv.py" "$T/test_region_attention.py" \
    "$T/test_causal_cross_attention.py" -k "cuda and not triton" >"$L/racecheck.log" 2>&1
   echo "racecheck exit $?" >>"$L/racecheck.log") &
fi
if want tests; then
  timeout "$budget" python3 -m pytest -q -p no:cacheprovider -n 8 $GPU_FILES -rfE \
    >"$L/pytest.log" 2>&1
  echo "pytest exit $?" >>"$L/pytest.log"
fi
wait
want tests && tail -25 "$L/pytest.log"
if want sanitize; then
  for t in memcheck racecheck; do
    echo "--- $t"; grep -E "ERROR SUMMARY|passed|failed|exit" "$L/$t.log" | tail -4
  done
fi

if want ops; then
stage "bench: ops"
timeout "$(limit 25 30)" disenttalk bench --suite ops --providers eager,cuda,triton \
  ${OPS_SHAPES:+--shapes "$OPS_SHAPES"} --budget 0.3 --json "$OUT/ops.json" --chart "$OUT/ops.png" \
  >"$L/bench_ops.txt" 2>"$L/bench_ops.err"
echo "exit $?"; cat "$L/bench_ops.txt"; [ -s "$L/bench_ops.txt" ] || tail -30 "$L/bench_ops.err"
fi

if want model; then
stage "bench: model jobs (fused)"
timeout "$(limit 55 30)" disenttalk bench --suite model --providers eager,cuda,triton \
  --budget 0.5 --json "$OUT/model.json" --chart "$OUT/model.png" \
  >"$L/bench_model.txt" 2>"$L/bench_model.err"
echo "exit $?"; cat "$L/bench_model.txt"; [ -s "$L/bench_model.txt" ] || tail -30 "$L/bench_model.err"
fi

if want model_bf16; then
stage "bench: model jobs in bf16 (step, DDIM)"
timeout "$(limit 30 30)" disenttalk bench --suite model --jobs step,ddim --dtype bf16 \
  --providers eager,cuda,triton --budget 0.5 --json "$OUT/model_bf16.json" \
  >"$L/bench_bf16.txt" 2>"$L/bench_bf16.err"
echo "exit $?"; cat "$L/bench_bf16.txt"; [ -s "$L/bench_bf16.txt" ] || tail -30 "$L/bench_bf16.err"
fi

if want model_tf32; then
stage "bench: model jobs in fp32 with TF32 products (step, DDIM)"
timeout "$(limit 30 30)" disenttalk bench --suite model --jobs step,ddim --tf32 \
  --providers eager,cuda,triton --budget 0.5 --json "$OUT/model_tf32.json" \
  >"$L/bench_tf32.txt" 2>"$L/bench_tf32.err"
echo "exit $?"; cat "$L/bench_tf32.txt"; [ -s "$L/bench_tf32.txt" ] || tail -30 "$L/bench_tf32.err"
fi

if want compile; then
# max-autotune spent 40 s autotuning single matrix products on an H200 (2026-11-26) and did not
# finish the first model shape in 270 s: COMPILE_MODE picks the mode (default: default).
stage "bench: denoiser step against torch.compile ${COMPILE_MODE:-default}"
timeout "$(limit 90 20)" disenttalk bench --suite model --jobs step --providers eager,compile \
  --compile-mode "${COMPILE_MODE:-default}" --budget 0.5 --json "$OUT/model_compile.json" \
  >"$L/bench_compile.txt" 2>"$L/bench_compile.err"
echo "exit $?"; cat "$L/bench_compile.txt"; grep -E "^  denoiser" "$L/bench_compile.err" | tail -6
fi
finish 0
