#!/usr/bin/env bash
# The GPU path in one run, under 9.5 minutes on one GPU (the phase limits below):
#   1. the CUDA-only tests (every evaluation on the GPU against the CPU, training repeatable);
#   2. the benchmark table (benchmarks/table.py) on CUDA, for the small CNN on digits and
#      for a ResNet-18 on 3 x 32 x 32 images;
#   3. the default experiment with `device: cuda` in a scratch folder, then its per-rule
#      totals (benchmarks/rule_times.py) and its tables (copied to OUTPUT/default_run_tables).
#      RUN_CONFIG runs another config instead (e.g. a paper preset's sample variant).
# Each phase has its own time limit, so one that overruns does not take the others with it;
# the script prints what each measured and exits non-zero if any phase failed.
#
# Usage: benchmarks/gpu.sh [OUTPUT_FOLDER]   (logs and the table's CSV go there;
#        default benchmarks/gpu-results). PYTHON selects the interpreter (default: .venv's,
#        else python3); the package is taken from src/ when it is not installed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUTPUT=${1:-benchmarks/gpu-results}
mkdir -p "$OUTPUT"
OUTPUT=$(cd "$OUTPUT" && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
TESTS_LIMIT=${TESTS_LIMIT:-60}
TABLE_LIMIT=${TABLE_LIMIT:-150}
RUN_LIMIT=${RUN_LIMIT:-200}
RUN_CONFIG=${RUN_CONFIG:-config.yaml}
# DEVICE=cpu runs every phase on the CPU (the CUDA tests then compare the CPU with itself):
# a check of this script on a machine without a GPU.
DEVICE=${DEVICE:-cuda}
export SALIENCYBENCH_TEST_DEVICE=$DEVICE
failed=()

# PHASES names the phases to run (default: all four), e.g. PHASES="cuda_tests benchmark_table".
PHASES=${PHASES:-cuda_tests benchmark_table benchmark_table_resnet default_run}

phase() {  # phase NAME LIMIT_SECONDS COMMAND...: run, time, log to OUTPUT/NAME.log
    local name=$1 limit=$2
    shift 2
    case " $PHASES " in
        *" $name "*) ;;
        *) echo "== $name: skipped (not in PHASES)"; return 0 ;;
    esac
    echo "== $name (limit ${limit} s)"
    local started=$SECONDS
    timeout --signal=TERM --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUTPUT/$name.log"
    local status=${PIPESTATUS[0]}
    echo "== $name: exit $status after $((SECONDS - started)) s"
    [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
"device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "no CUDA device: nothing to do here (the CPU path is what make test checks)"
    exit 1
fi

phase cuda_tests "$TESTS_LIMIT" "$PYTHON" -m pytest -q -p no:cacheprovider \
    tests/test_cuda.py tests/test_methods.py -k "cuda or test_cuda"

# 128 images for the randomization stage (the table's default is a quarter of --images):
# eleven randomized models of 32 images each leave the GPU idle between them.
phase benchmark_table "$TABLE_LIMIT" "$PYTHON" benchmarks/table.py --device "$DEVICE" \
    --randomization-images 128 --csv "$OUTPUT/benchmark_table.csv"
# A ResNet-18 on 3 x 32 x 32: where batching pays on a GPU.
phase benchmark_table_resnet "$TABLE_LIMIT" "$PYTHON" benchmarks/table.py --device "$DEVICE" \
    --architecture cifar_resnet18 --channels 3 --size 32 --images 64 \
    --csv "$OUTPUT/benchmark_table_resnet.csv"

# The default experiment in a scratch folder, so that a finished CPU run in results/ stays.
# Model jobs need no CPU threads of their own on a GPU: one thread each lets every core run
# a job.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/saliencybench-gpu-XXXXXX")
started=$(date +%s)
phase default_run "$RUN_LIMIT" "$PYTHON" -m snakemake --snakefile "$ROOT/Snakefile" \
    --directory "$scratch" --configfile "$ROOT/$RUN_CONFIG" --profile "$ROOT/profiles/default" \
    --cores all --config device="$DEVICE" --set-threads train=1 retrain=1 train_permuted_labels=1 \

[ -d "$scratch/benchmarks/rules" ] && "$PYTHON" benchmarks/rule_times.py \
    "$scratch/benchmarks/rules" --since "$started" | tee "$OUTPUT/default_run_rules.txt"
[ -d "$scratch/results/tables" ] && cp -r "$scratch/results/tables" "$OUTPUT/default_run_tables"
[ -f "$scratch/results/report.html" ] && echo "page written: results/report.html"
[ "${KEEP_SCRATCH:-0}" = 1 ] && echo "scratch folder kept: $scratch" || rm -rf "$scratch"

if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "every phase passed"
