#!/usr/bin/env bash
# The main job, on a fresh machine: install, generate the embedded motion dataset,
# train a tiny FluxViT with Flux-Multi, and evaluate it across token budgets.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash tools/setup_env.sh
PY=.venv/bin/python
CONFIG=configs/fluxvit/fluxvit-tiny_synthetic.py
WORK=${WORK_DIR:-work_dirs/quickstart}

echo "[1/3] generating the synthetic motion dataset (data/synthetic_motion)"
$PY tools/generate_synthetic_data.py --out data/synthetic_motion

echo "[2/3] training $CONFIG (Flux-Multi, flexible grids) -> $WORK"
$PY tools/train.py "$CONFIG" --work-dir "$WORK"
CKPT=$(ls -t "$WORK"/best_*.pth 2>/dev/null | head -n 1 || true)
[ -n "$CKPT" ] || CKPT=$(ls -t "$WORK"/epoch_*.pth | head -n 1)

echo "[3/3] testing $CKPT at several token budgets (test split, 2 clips x 3 crops)"
$PY tools/budget_report.py "$CONFIG" "$CKPT" --budgets 256 128 64 32 --side 56 \
    --to-grid 16 56 --work-dir "$WORK/budgets"
echo "main job done in $(( $(date +%s) - start )) s"
