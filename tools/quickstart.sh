#!/usr/bin/env bash
# The main job, on a fresh machine: install, generate the embedded motion dataset,
# train a tiny FluxViT with Flux-Multi, and evaluate it across token budgets.
# Prints the time of every step and the total.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step_start=$start
times=()
step_done() {  # record the time of the step just finished
  local now
  now=$(date +%s)
  times+=("$1: $((now - step_start)) s")
  echo "[time] $1: $((now - step_start)) s"
  step_start=$now
}
# the main job does not export: the deployment runtimes (about 25 s of installing) are
# left to tools/run_tests.sh or a plain tools/setup_env.sh; MMFLUX_DEPLOY=1 installs them here
MMFLUX_DEPLOY=${MMFLUX_DEPLOY:-0} bash tools/setup_env.sh
step_done "setup"
PY=.venv/bin/python
CONFIG=configs/fluxvit/fluxvit-tiny_synthetic.py
WORK=${WORK_DIR:-work_dirs/quickstart}

echo "[1/3] generating the synthetic motion dataset (data/synthetic_motion)"
$PY tools/generate_synthetic_data.py --out data/synthetic_motion
step_done "1/3 data"

echo "[2/3] training $CONFIG (Flux-Multi, flexible grids) -> $WORK"
$PY tools/train.py "$CONFIG" --work-dir "$WORK"
CKPT=$(ls -t "$WORK"/best_*.pth 2>/dev/null | head -n 1 || true)
[ -n "$CKPT" ] || CKPT=$(ls -t "$WORK"/epoch_*.pth | head -n 1)
step_done "2/3 training"

echo "[3/3] testing $CKPT at several token budgets (test split, 2 clips x 3 crops, one decode per video)"
$PY tools/budget_report.py "$CONFIG" "$CKPT" --budgets 256 128 64 32 --side 56 \
    --to-grid 16 56 --work-dir "$WORK/budgets"
step_done "3/3 budget report"
printf '[time] %s\n' "${times[@]}"
echo "main job done in $(( $(date +%s) - start )) s"
