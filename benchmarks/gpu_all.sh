#!/usr/bin/env bash
# Every GPU number of this project in one run: ≤ 10 minutes of device time on one H100 80GB.
#
#     bash benchmarks/gpu_all.sh                # on the GPU machine, from the repository root
#     bash benchmarks/gpu_all.sh --cpu-smoke    # here: every part with tiny sizes on the CPU (no GPU)
#
# Through this project's device tool: run(command="bash benchmarks/gpu_all.sh", timeout_s=600);
# the JSON files come back from $OUT. Parts, each under its own `timeout`, each writing
# $OUT/<part>.json (a failed or timed-out part is recorded in summary.json and the next runs):
#
#   env         (into summary.json) python, torch, CUDA, GPUs, transformers, peft; the repo's modules import
#   single_1b   Phi-1.5 shape (1.4 B, random init), fp32 master weights + bf16 autocast, one card:
#               every method's ms/step, peak memory, the engine's gradient buffer, MFU (issue 9:
#               MFU ≥ 40 %, NGDiff ≤ 1.05 × GDiff, peak ≤ GDiff + one gradient buffer)
#   lora_7b     Llama-2-7B shape, parameters bf16 and frozen, LoRA r 16 on every linear layer
#               (adapters fp32, peft's default): does it fit one 80 GB card, ms/step, peak
#   fsdp_1gpu   Llama-1B shape under FSDP in an NCCL group of one (the multi-worker code path on a
#               GPU, and the per-rank memory baseline for N = 1)
#   fsdp_multi  only with ≥ 2 GPUs (`nvidia-smi -L`): Llama-1B under DDP and FSDP on every card,
#               per-rank memory and ms/step; with ≥ 4, Llama-2-7B full fine-tuning under FSDP
#   fit         the largest Llama that fits one card, full and LoRA (what time is left)
#
# Assumptions about the GPU machine (this project's device machines: one H100 80GB, 16 CPUs, no
# network; their image's python3 holds torch 2.11+cu130, transformers 5.17 and peft):
#   - Nothing can be downloaded: no hub (models are built from their config with random weights —
#     speed and memory do not depend on the weights) and no pip. `pip install -e .` would need
#     ray, optuna, datasets and rouge-score, which the image lacks, so the repo is NOT installed:
#     the benchmarks import only pareto.core, pareto.lm and pareto.data.qa (torch, transformers,
#     peft), found through PYTHONPATH=<repo root>. The `env` part checks those imports first; a
#     missing package would travel as a wheel (.whl, carried; /work/.library/device/README.md).
#   - $OUT is the folder whose files come back (at most 8 files): one JSON file per part (at most
#     6), summary.json (the env part's findings folded in) and gpu_all.log. Outside the device tool OUT defaults to ./gpu_results.
#   - The whole script must fit one 600 s command with the machine's start-up inside 10 minutes of
#     device time: parts get at most BUDGET_S seconds in all (default 450), each part its own cap.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SMOKE=0
[ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
OUT="${OUT:-$ROOT/gpu_results}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
BUDGET_S="${BUDGET_S:-450}"
LOG="$OUT/gpu_all.log"
: >"$LOG"
T0=$(date +%s)
PARTS=()

say() { echo "$*" | tee -a "$LOG"; }

# part NAME CAP_S COMMAND...: runs COMMAND under `timeout` (the smaller of CAP_S and what is left
# of BUDGET_S), its output into the log; records name, exit status and seconds for summary.json
part() {
  local name="$1" cap="$2"
  shift 2
  local left=$((BUDGET_S - ($(date +%s) - T0)))
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 20 ]; then
    say "== $name: skipped (${left}s of the ${BUDGET_S}s budget left)"
    PARTS+=("{\"part\": \"$name\", \"rc\": null, \"skipped\": \"budget\"}")
    return
  fi
  say "== $name (timeout ${limit}s): $*"
  local t=$(date +%s)
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  local s=$(($(date +%s) - t))
  [ "$rc" = 124 ] && say "== $name: TIMED OUT after ${s}s" || say "== $name: exit $rc after ${s}s"
  PARTS+=("{\"part\": \"$name\", \"rc\": $rc, \"seconds\": $s}")
}

# summary.json: the machine (env.json's contents, folded in: $OUT returns at most 8 files) and
# every part's exit status and seconds
summary() {
  local IFS=,
  local env="null"
  [ -s "$OUT/env.json" ] && env="$(cat "$OUT/env.json")" && rm -f "$OUT/env.json"
  printf '{"smoke": %s, "budget_s": %s, "total_s": %s, "gpus": %s, "env": %s, "parts": [%s]}\n' \
    "$SMOKE" "$BUDGET_S" "$(($(date +%s) - T0))" "${NGPU:-0}" "$env" "${PARTS[*]}" >"$OUT/summary.json"
  say "summary: $OUT/summary.json"
}

# --- env: is there a GPU, and do the modules import --------------------------------------------
CUDA=$("$PY" -c "import torch; print(torch.cuda.is_available())" 2>>"$LOG")
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
say "python: $("$PY" --version 2>&1); torch.cuda.is_available(): ${CUDA:-import failed}; nvidia-smi -L: $NGPU GPU(s)"
nvidia-smi -L 2>/dev/null | tee -a "$LOG"
part env 60 "$PY" - "$OUT/env.json" <<'EOF'
import json, platform, sys
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
for mod in ("transformers", "peft"):
    try:
        info[mod] = __import__(mod).__version__
    except Exception as exc:
        info[mod] = f"missing: {exc}"
from torch.distributed.fsdp import FSDPModule
info["fsdp2_force_sum"] = hasattr(FSDPModule, "set_force_sum_reduction_for_comms")
import pareto.core.engine, pareto.core.parallel, pareto.lm, pareto.data.qa  # what the benchmarks import
info["nccl"] = torch.distributed.is_nccl_available()
print(json.dumps(info))
json.dump(info, open(sys.argv[1], "w"), indent=1)
EOF

if [ "$SMOKE" = 1 ]; then
  # the same parts, tiny sizes, on the CPU (gloo): the script's plumbing, not its numbers
  NGPU=0
  part single_1b 120 "$PY" benchmarks/gpu_step.py --smoke --cpu --precision autocast --json "$OUT/single_1b.json"
  part lora_7b 120 "$PY" benchmarks/gpu_step.py --smoke --cpu --lora --precision bf16-cpu \
    --methods gdiff_usual,gdiff,ngdiff,npo --json "$OUT/lora_7b.json"
  part fsdp_1gpu 120 "$PY" benchmarks/gpu_step.py --smoke --cpu --workers 1 --parallel fsdp --precision autocast \
    --methods gdiff_usual,ngdiff --json "$OUT/fsdp_1gpu.json"
  part fsdp_multi 120 "$PY" benchmarks/gpu_step.py --smoke --cpu --workers 2 --parallel ddp,fsdp --threads 1 \
    --precision autocast --methods gdiff_usual,ngdiff --json "$OUT/fsdp_multi.json"
  part fit 120 "$PY" benchmarks/gpu_step.py --smoke --cpu --fit --json "$OUT/fit.json"
  summary
  exit 0
fi

if [ "$CUDA" != "True" ]; then
  say "no GPU: torch.cuda.is_available() is ${CUDA:-not readable} (use --cpu-smoke to check the script on a CPU)"
  PARTS+=("{\"part\": \"gpu\", \"rc\": 1, \"error\": \"torch.cuda.is_available() is not True\"}")
  summary
  exit 1
fi

# --- one card -----------------------------------------------------------------------------------
part single_1b 180 "$PY" benchmarks/gpu_step.py --arch phi-1_5 --precision autocast --batch 8 --seq 512 \
  --steps 20 --warmup 3 --json "$OUT/single_1b.json"
part lora_7b 150 "$PY" benchmarks/gpu_step.py --arch llama2-7b --lora --precision bf16 --batch 8 --seq 512 \
  --steps 10 --warmup 2 --methods gdiff_usual,gdiff,ngdiff,npo --json "$OUT/lora_7b.json"
part fsdp_1gpu 75 "$PY" benchmarks/gpu_step.py --arch llama-1b --workers 1 --parallel fsdp --precision autocast \
  --batch 8 --seq 512 --steps 5 --warmup 2 --methods gdiff_usual,ngdiff --json "$OUT/fsdp_1gpu.json"

# --- several cards --------------------------------------------------------------------------------
if [ "$NGPU" -ge 2 ]; then
  part fsdp_multi 150 "$PY" benchmarks/gpu_step.py --arch llama-1b --workers "$NGPU" --parallel ddp,fsdp \
    --precision autocast --batch $((4 * NGPU)) --seq 512 --steps 10 --warmup 2 --methods gdiff_usual,ngdiff \
    --json "$OUT/fsdp_multi.json"
  if [ "$NGPU" -ge 4 ]; then
    part fsdp_7b 180 "$PY" benchmarks/gpu_step.py --arch llama2-7b --workers "$NGPU" --parallel fsdp \
      --precision autocast --batch $((2 * NGPU)) --seq 512 --steps 5 --warmup 2 --methods ngdiff \
      --json "$OUT/fsdp_7b.json"
  fi
else
  say "== fsdp_multi: skipped ($NGPU GPU; FSDP/DDP across cards needs 2 or more)"
  PARTS+=("{\"part\": \"fsdp_multi\", \"rc\": null, \"skipped\": \"$NGPU GPU\"}")
fi

# --- what fits one card (whatever time is left) ---------------------------------------------------
part fit 120 "$PY" benchmarks/gpu_step.py --fit --json "$OUT/fit.json"
summary
