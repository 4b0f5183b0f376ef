#!/usr/bin/env bash
# The workflow under a real SLURM: a one-node cluster (munge, slurmctld, slurmd) on this
# machine, the tiny test config run through `--profile profiles/slurm`, and three checks:
#   1. the workflow completes and every job ran as a SLURM job (job IDs, one log each,
#      partitions and GPU requests as the profile and the rules say);
#   2. a job that fails is retried with more memory, then fails the run with its log shown;
#   3. a run killed while its jobs run resumes: the rerun redoes only what was cut off
#      (here with the two jobs grouped into one submission, as the README shows).
# Root on Debian only: it installs Debian's SLURM packages and writes /etc/slurm/slurm.conf
# (the plugin's job steps drop SLURM_CONF, so the file must be at its default path). The
# executor plugin goes into .venv-slurm, a virtual environment layered over .venv, never
# into .venv itself. Daemons it starts are stopped by PID on exit. `make test-slurm` runs it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=$ROOT/.venv
SLURM_VENV=$ROOT/.venv-slurm
PY=$SLURM_VENV/bin/python
RUN_TIMEOUT=${RUN_TIMEOUT:-300}   # seconds per Snakemake run; SIGINT after that
# KEEP_SLURM_TEST=1 keeps the scratch folder (daemon logs, runs, SLURM logs) for a look.
CONF=/etc/slurm/slurm.conf
MARK="# Written by saliencybench tests/slurm/run.sh; removed when it ends."
T0=$SECONDS

say() { printf '\n== [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() {
    printf '\nFAIL: %s\n' "$*" >&2
    exit 1
}

# --------------------------------------------------------------------------- preconditions
[ "$(id -u)" = 0 ] || { echo "tests/slurm/run.sh: needs root (installs SLURM, starts its daemons)" >&2; exit 2; }
[ -f /etc/debian_version ] || { echo "tests/slurm/run.sh: needs Debian (installs SLURM with apt)" >&2; exit 2; }
[ -x "$VENV/bin/python" ] || { echo "tests/slurm/run.sh: no $VENV; run 'make test-slurm'" >&2; exit 2; }
if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
    fail "$CONF exists and was not written by this test: refusing to replace a real SLURM configuration"
fi
# --------------------------------------------------------------------------- software
say "SLURM packages"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
dpkg-query -W slurmctld slurmd slurm-client munge
# Where systemd runs, apt may have started the daemons itself.
for daemon in slurmctld slurmd; do
    if pgrep -x "$daemon" >/dev/null; then
        fail "$daemon is already running: stop it first (this test starts its own cluster)"
    fi
done

# .venv-slurm sees every package of .venv (a .pth file adds its site-packages) and adds the
# `slurm` extra of pyproject.toml: the plugin stays out of .venv, where it would cost every
# Snakemake call a `scontrol` round trip, and torch is not installed twice.
say "Executor plugin in .venv-slurm"
if [ ! -f "$SLURM_VENV/.installed" ] || [ "$ROOT/pyproject.toml" -nt "$SLURM_VENV/.installed" ] \
    || [ "$VENV/.installed" -nt "$SLURM_VENV/.installed" ]; then
    rm -rf "$SLURM_VENV"
    base=$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')
    "$base" -m venv --without-pip "$SLURM_VENV"   # pip and setuptools come from .venv
    main_site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$main_site')" >"$site/_saliencybench_main_venv.pth"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-build-isolation \
        -e "${ROOT}[slurm]"
    touch "$SLURM_VENV/.installed"
fi
"$PY" -m pip list --disable-pip-version-check 2>/dev/null | grep -E '^snakemake(-executor-plugin-slurm)? '

# --------------------------------------------------------------------------- the cluster
STATE=$(mktemp -d /tmp/saliencybench-slurm.XXXXXX)
WORK=$STATE/work
PIDS=()       # daemons this script started, stopped in reverse order on exit
RUNNER=""     # a Snakemake run in the background (check 3)
CONF_OURS=0

stop_pid() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
}

show_logs() {
    local file
    for file in "$STATE"/slurmctld.log "$STATE"/slurmd.log; do
        [ -f "$file" ] && { echo "---- $file (last 40 lines)"; tail -n 40 "$file"; }
    done
    if [ -d "$WORK" ]; then
        find "$WORK" -path '*/logs/*' -name '*.log' -newer "$CONF" 2>/dev/null | sort | while read -r file; do
            echo "---- ${file#"$WORK"/} (last 30 lines)"
            tail -n 30 "$file"
        done
    fi
}

cleanup() {
    local rc=$? i job
    trap - EXIT
    set +e
    if [ "$rc" -ne 0 ]; then
        say "Failed (exit $rc): daemon and job logs"
        show_logs
    fi
    [ -n "$RUNNER" ] && kill -9 "$RUNNER" 2>/dev/null
    if [ ${#PIDS[@]} -gt 0 ] && command -v squeue >/dev/null; then
        for job in $(squeue -h -o %i 2>/dev/null); do scancel "$job"; done
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    [ "$CONF_OURS" = 1 ] && rm -f "$CONF"
    if [ -n "${KEEP_SLURM_TEST:-}" ]; then echo "kept $STATE"; else rm -rf "$STATE"; fi
    say "Daemons stopped; exit $rc"
    exit "$rc"
}
trap cleanup EXIT

say "Starting munged, slurmctld and slurmd (state in $STATE)"
mkdir -p "$STATE"/ctld "$STATE"/d "$WORK"
chmod 755 "$STATE"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
    mkdir -p /run/munge && chown munge:munge /run/munge
    # In the foreground and exec'd by setpriv: $! is the daemon itself, no pid-file race.
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
        >"$STATE/munged.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
# The node advertises at least 16 GB: the profile asks for a few GB per job, and twice and
# three times that on retries; nothing enforces it here (task/none) and the jobs are tiny.
# config_overrides lets slurmd take the declared size over the measured one.
[ "$mem" -ge 16384 ] || mem=16384
mkdir -p /etc/slurm
cat >"$CONF" <<EOF
$MARK
ClusterName=saliencybench-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmdParameters=config_overrides
NodeName=localhost NodeHostname=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=cpu Default=YES Nodes=ALL MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
CONF_OURS=1

/usr/sbin/slurmctld -D >"$STATE/slurmctld.out" 2>&1 &
PIDS+=("$!")
/usr/sbin/slurmd -D -N localhost >"$STATE/slurmd.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 60); do
    [ "$(sinfo -h -o %t 2>/dev/null | sort -u)" = idle ] && break
    sleep 0.5
done
sinfo
[ "$(sinfo -h -o %t | sort -u)" = idle ] || fail "the node did not become idle"

# --------------------------------------------------------------------------- helpers
# The tiny config of tests/test_workflow.py with two methods: 4 SLURM jobs. The test cluster
# has no accounting and short jobs, so Snakemake polls every 2 s instead of the profile's 20.
write_config() {  # write_config FOLDER ATTRIBUTION_BATCH_SIZE [DATASET_YAML]
    local dataset=${3:-"{source: digits, options: {max_train: 300, max_test: 60}}"}
    mkdir -p "$1"
    cat >"$1/config.yaml" <<EOF
seed: 0
device: cpu
datasets: {digits: $dataset}
models: {small_cnn: {}}
recipes: {standard: {epochs: 3, batch_size: 32, lr: 0.05}}
methods: {saliency: {}, random: {}}
attribution: {batch_size: $2}
experiments: [{dataset: digits, model: small_cnn, methods: [saliency, random], evaluations: []}]
chance_margin: null
EOF
}

SNAKEMAKE=(-m snakemake --snakefile "$ROOT/Snakefile" --configfile config.yaml
    --profile "$ROOT/profiles/slurm"
    --slurm-init-seconds-before-status-checks 2 --seconds-between-status-checks 2)

snakemake_slurm() {  # snakemake_slurm FOLDER LOG [ARGS]: run in FOLDER, output to LOG
    local folder=$1 log=$2
    shift 2
    (cd "$folder" && timeout -s INT "$RUN_TIMEOUT" "$PY" "${SNAKEMAKE[@]}" "$@") >"$log" 2>&1
}

submitted() {  # submitted LOG: "jobid logfile" for every job the run submitted
    sed -nE 's/.*submitted with SLURM jobid ([0-9]+) \(log: (.*)\)\.$/\1 \2/p' "$1"
}

job_field() {  # job_field JOBID FIELD: one field of `scontrol show job`
    scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

job_stats() {  # job_stats LOG: "rule count" lines of the run's job table, `all` left out
    awk '/^Job stats:/ {on = 1; next} on && /^total/ {exit} on && NF == 2 && $2 ~ /^[0-9]+$/ && $1 != "all" {print $1, $2}' "$1"
}

check_outputs() {  # check_outputs FOLDER: every store written, maps from the trained model
    (cd "$1" && "$VENV/bin/python" - <<'EOF'
import json
from saliencybench import paths, store

sidecar = json.load(open(paths.checkpoint_sidecar("digits", "small_cnn", "standard", 0)))
data = store.read_dataset(paths.data_store("digits"))
assert data["train"].images.shape == (300, 1, 8, 8), data["train"].images.shape
assert sidecar["data_hash"] == data.content_hash
for method in ("saliency", "random"):
    maps = store.read_attributions(paths.attribution_store("digits", "small_cnn", "standard", 0, method))
    assert maps.attrs["checkpoint_sha256"] == sidecar["checkpoint_sha256"], method
print("outputs: data, model and 2 attribution stores, consistent")
EOF
    )
}

# --------------------------------------------------------------------------- 1. complete run
say "1. The tiny workflow under SLURM"
write_config "$WORK/run" 64
snakemake_slurm "$WORK/run" "$WORK/run1.log" || { rc=$?; tail -n 60 "$WORK/run1.log"; fail "run 1 exited $rc"; }
check_outputs "$WORK/run"
submitted "$WORK/run1.log" >"$WORK/jobs1"
[ "$(wc -l <"$WORK/jobs1")" -eq 4 ] || { cat "$WORK/jobs1"; fail "expected 4 SLURM jobs"; }
while read -r id log; do
    [ -f "$log" ] || fail "no SLURM log $log for job $id"
    [ "$(basename "$log")" = "$id.log" ] || fail "log $log is not named after job $id"
    case $log in "$WORK/run/logs/slurm/"*) ;; *) fail "log $log outside logs/slurm" ;; esac
    rule=$(job_field "$id" Comment)
    rule=${rule#rule_}
    rule=${rule%%_wildcards_*}
    state=$(job_field "$id" JobState)
    partition=$(job_field "$id" Partition)
    gpus=$(job_field "$id" TresPerJob)
    printf '  job %-4s %-13s %-10s partition=%-4s gpus=%s\n' "$id" "$rule" "$state" "$partition" "${gpus:-none}"
    [ "$state" = COMPLETED ] || fail "job $id ($rule) is $state"
    case $rule in
        train | attribute) want=gpu ;;   # set-resources of the profile
        *) want=cpu ;;                   # the cluster's default partition
    esac
    [ "$partition" = "$want" ] || fail "job $id ($rule) ran in partition $partition, expected $want"
    [ -z "$gpus" ] || fail "job $id ($rule) asked for GPUs ($gpus) with device: cpu"
done <"$WORK/jobs1"
ids1=$(cut -d' ' -f1 "$WORK/jobs1" | tr '\n' ' ')
echo "  SLURM job IDs: $ids1"
snakemake_slurm "$WORK/run" "$WORK/run1b.log" || fail "no-op rerun exited $?"
grep -q "Nothing to be done" "$WORK/run1b.log" || fail "the rerun was not a no-op"
[ -z "$(submitted "$WORK/run1b.log")" ] || fail "the no-op rerun submitted jobs"

# --------------------------------------------------------------------------- 2. a failing job
# Gzipped MNIST files whose headers are sound but whose image data stops short: validation
# reads headers only, so the run starts; prepare_data decompresses the data, fails in its
# SLURM job, and again when retried (once here; the profile says twice).
say "2. A failing job"
mkdir -p "$WORK/mnist"
"$PY" - "$WORK/mnist" <<'IDX'
import gzip, struct, sys
for split, count in (("train", 20), ("t10k", 10)):
    with gzip.open(f"{sys.argv[1]}/{split}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">IIII", 2051, count, 8, 8) + bytes(count * 8))  # 1/8 of it
    with gzip.open(f"{sys.argv[1]}/{split}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">II", 2049, count) + bytes(range(count)))
IDX
write_config "$WORK/broken" 64 "{source: mnist, options: {path: $WORK/mnist}}"
if snakemake_slurm "$WORK/broken" "$WORK/broken.log" --retries 1; then
    fail "the run with a failing job succeeded"
fi
grep -q "Error in rule prepare_data" "$WORK/broken.log" || { tail -n 60 "$WORK/broken.log"; fail "no error reported for prepare_data"; }
grep -q "(truncated)" "$WORK/broken.log" || { tail -n 60 "$WORK/broken.log"; fail "the failed job's log was not shown"; }
submitted "$WORK/broken.log" >"$WORK/jobs2"
[ "$(wc -l <"$WORK/jobs2")" -eq 2 ] || { cat "$WORK/jobs2"; fail "expected 2 attempts (--retries 1)"; }
mems=""
while read -r id _; do
    [ "$(job_field "$id" JobState)" = FAILED ] || fail "job $id is $(job_field "$id" JobState), not FAILED"
    mems="$mems $(job_field "$id" MinMemoryNode)"
done <"$WORK/jobs2"
echo "  failed as expected: 2 attempts, SLURM jobs $(cut -d' ' -f1 "$WORK/jobs2" | tr '\n' ' ')memory:$mems"
# shellcheck disable=SC2086  # one word per attempt
[ "$(printf '%s\n' $mems | sort -u | wc -l)" -eq 2 ] || fail "memory did not grow with each attempt:$mems"

# --------------------------------------------------------------------------- 3. resume
# A new attribution batch size reruns both attribute jobs; Snakemake is killed (SIGKILL, as
# a lost login session) once one runs, and the SLURM jobs are cancelled. The rerun groups
# the two jobs into one SLURM submission (README, "Running on a cluster").
say "3. Resume after a killed run"
write_config "$WORK/run" 32
(cd "$WORK/run" && exec "$PY" "${SNAKEMAKE[@]}") >"$WORK/killed.log" 2>&1 &
RUNNER=$!
killed=0
for _ in $(seq $((RUN_TIMEOUT * 2))); do
    if squeue -h -o '%T %k' | grep -q '^RUNNING rule_attribute'; then
        kill -9 "$RUNNER"
        killed=1
        break
    fi
    kill -0 "$RUNNER" 2>/dev/null || break
    sleep 0.5
done
wait "$RUNNER" 2>/dev/null || true
RUNNER=""
[ "$killed" = 1 ] || { tail -n 40 "$WORK/killed.log"; fail "no attribute job ran before the run ended"; }
for job in $(squeue -h -o %i); do scancel "$job"; done
echo "  killed Snakemake while attribute jobs ran; cancelled the SLURM jobs"
# A killed Snakemake leaves its lock behind; the README says to unlock first.
(cd "$WORK/run" && "$PY" -m snakemake --snakefile "$ROOT/Snakefile" --configfile config.yaml --unlock) \
    >"$WORK/unlock.log" 2>&1 || { cat "$WORK/unlock.log"; fail "unlock failed"; }
snakemake_slurm "$WORK/run" "$WORK/resume.log" --groups attribute=maps --group-components maps=2 \
    || { rc=$?; tail -n 60 "$WORK/resume.log"; fail "the resumed run exited $rc"; }
job_stats "$WORK/resume.log" >"$WORK/stats3"
sed 's/^/  rerun: /' "$WORK/stats3"
grep -qxE 'attribute 2' "$WORK/stats3" || fail "the rerun did not redo both attribute jobs"
! grep -qE '^(prepare_data|train) ' "$WORK/stats3" || fail "the rerun redid finished jobs"
submitted "$WORK/resume.log" >"$WORK/jobs3"
[ "$(wc -l <"$WORK/jobs3")" -eq 1 ] || { cat "$WORK/jobs3"; fail "expected one grouped SLURM job"; }
read -r id log <"$WORK/jobs3"
[ "$(job_field "$id" JobState)" = COMPLETED ] || fail "grouped job $id is $(job_field "$id" JobState)"
echo "  both attribute jobs ran in SLURM job $id (log ${log#"$WORK"/run/})"
check_outputs "$WORK/run"

say "SLURM test passed"
