#!/usr/bin/env bash
# The CUDA path in one go, on a machine with one or more NVIDIA GPUs (under 8 minutes):
#
#   bash benchmarks/device_check.sh
#
# From a bare copy of the repository it makes .venv (pip install torch==2.14.1
# torchvision==0.29.1 -e '.[test]'), or uses an existing .venv that imports torch and
# optuna_ohgw. It prints, section by section:
#   1. the GPUs (nvidia-smi) and what torch sees;
#   2. the CUDA tests (pytest -k "cuda or gpu"; on a GPU machine none may skip);
#   3. the probe on the GPU vs the CPU in float64 (loss, hypergradients, largest relative diff);
#   4. a ResNet-20 epoch on 50,000 generated CIFAR-10-shaped images held on the GPU, the probe's
#      seconds on that network and their share of the epoch;
#   5. a short `ohgw-optuna run` with one worker per GPU, and the device each worker used.
# It exits 1 at once, saying why, without an NVIDIA GPU that torch can use; and non-zero at the
# end if any section failed. OHGW_DEVICE_CHECK_CPU=1 runs the same steps on the CPU (fewer
# images, two workers) to check the script itself: a dry run whose figures mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
DRY="${OHGW_DEVICE_CHECK_CPU:-0}"
FAILED=()

section() { printf '\n===== %s  [%ds]\n' "$*" $((SECONDS - START)); }
die() { echo "device_check: ERROR: $*" >&2; exit 1; }
failed() { echo "device_check: FAILED: $*" >&2; FAILED+=("$*"); }

if [[ "$DRY" == 1 ]]; then
    echo "device_check: DRY RUN on the CPU (OHGW_DEVICE_CHECK_CPU=1): checks the script, not a GPU"
fi

section "1. GPUs"
if [[ "$DRY" != 1 ]]; then
    command -v nvidia-smi >/dev/null 2>&1 \
        || die "nvidia-smi not found: this check needs a machine with NVIDIA GPUs and their driver (OHGW_DEVICE_CHECK_CPU=1 for a CPU dry run)"
    nvidia-smi -L || die "nvidia-smi lists no GPU (driver not loaded?)"
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
fi

PY=.venv/bin/python
if [[ -x "$PY" ]] && "$PY" -c "import torch, optuna_ohgw, pytest" 2>/dev/null; then
    echo "using the existing .venv"
else
    echo "making .venv (pip install torch==2.14.1 torchvision==0.29.1 -e '.[test]') ..."
    python3 -m venv .venv \
        && .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[test]' \
        || die "could not install into .venv (see pip's message above)"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this copy's code, whatever .venv points at
NGPU="$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')"
"$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
      f"cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
EOF
if [[ "$NGPU" -lt 1 && "$DRY" != 1 ]]; then
    die "torch sees no CUDA device although nvidia-smi lists GPUs (a CPU-only torch wheel, or a driver too old for CUDA $("$PY" -c 'import torch; print(torch.version.cuda)'))"
fi
DEVICE=cuda; IMAGES=50000; NWORKERS="$NGPU"
if [[ "$DRY" == 1 ]]; then DEVICE=cpu; IMAGES=1024; NWORKERS=2; fi

section "2. CUDA tests (pytest -k 'cuda or gpu')"
OUT="$(timeout 240 "$PY" -m pytest -q -rs -p no:cacheprovider -k "cuda or gpu" tests/ 2>&1)"
rc=$?
echo "$OUT" | tail -n 25
if [[ $rc == 5 ]]; then
    failed "no CUDA tests were collected"
elif [[ $rc != 0 ]]; then
    failed "CUDA tests (pytest exit $rc)"
elif [[ "$DRY" != 1 ]] && grep -q " skipped" <<<"$OUT"; then
    failed "CUDA tests skipped on a GPU machine (see the reasons above)"
fi

section "3+4. probe GPU vs CPU (float64); ResNet-20 epoch with GPU-resident data; probe share"
timeout 240 "$PY" benchmarks/device_check.py --device "$DEVICE" --images "$IMAGES" \
    || failed "probe / epoch figures (exit $?)"

section "5. ohgw-optuna run, one worker per GPU ($NWORKERS)"
WORK="$(mktemp -d)"
(
    cd "$WORK" || exit 1
    if [[ "$DRY" != 1 ]]; then
        (sleep 25; echo "-- nvidia-smi compute processes 25 s in:";
         nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv) &
    fi
    timeout 180 "$OLDPWD/.venv/bin/python" -c "from cli.main import main; main()" run \
        --study digits-asha --n-workers "$NWORKERS" --budget "n_trials=$((4 * NWORKERS))" \
        --storage "journal:$WORK/check.journal" 2>&1 | tr '\r' '\n' | grep -v "it/s\]\|trial/s" | tail -n 14
    exit "${PIPESTATUS[0]}"
) || failed "the short run (exit $?)"
"$PY" - "$WORK/check.journal" <<'EOF' || failed "reading the run's workers"
import collections, sys
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name="digits-asha",
                          storage=JournalStorage(JournalFileBackend(sys.argv[1])))
workers = collections.defaultdict(list)
for t in study.trials:
    owner = t.system_attrs.get("ohgw:worker") or {}
    key = (owner.get("worker"), owner.get("pid"), owner.get("device"),
           owner.get("CUDA_VISIBLE_DEVICES"))
    workers[key].append(t.state.name)
print(f"{'worker':>6} {'pid':>8} {'device':>7} {'CUDA_VISIBLE_DEVICES':>20} trials")
for (index, pid, device, visible), states in sorted(workers.items(), key=str):
    print(f"{index!s:>6} {pid!s:>8} {device!s:>7} {visible!s:>20} {len(states)} "
          f"({collections.Counter(states).most_common()})")
if any(state == "FAIL" for states in workers.values() for state in states):
    sys.exit("some trials failed")
EOF
rm -rf "$WORK"

section "done"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    printf 'device_check: %d section(s) FAILED:\n' "${#FAILED[@]}" >&2
    printf '  - %s\n' "${FAILED[@]}" >&2
    exit 1
fi
echo "device_check: every section passed${DRY:+}$([[ "$DRY" == 1 ]] && echo ' (DRY RUN on the CPU)')"
