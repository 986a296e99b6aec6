#!/usr/bin/env bash
# The pipeline on a CUDA GPU, checked and timed in one go (used on a lent H100/H200):
#   bash bench/device_check.sh [FRAMES_DIR]
# FRAMES_DIR holds class folders of real frames (default .device/sem_subset, a git-ignored copy
# of a few classes of ../shared/sem). First bench/throughput.py (paper vs paper_fast with B7, and
# the gpu recipe's ResNet-18: issue 4's table), then a 1-process torchrun run (DDP over NCCL),
# the test suite, then aug_img -> train -> test with the
# `cpu` version on the GPU, the offline-pretrained message, one epoch of the `paper` version
# from scratch (img/s from its history), and 3 epochs of the `gpu` recipe on 448 px crops with
# test (tta), predict.py and gradcam.py on the GPU. Results are copied to $OUT (or .device/results).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SRC=$(realpath "${1:-$REPO/.device/sem_subset}")
RESULTS=${OUT:-$REPO/.device/results}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
step() { echo; echo "== $* ($(date +%T))"; }

step versions
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"

step "throughput: paper vs paper_fast, EfficientNet-B7 at 224 px (train.py's own loop)"
timeout 240 python3 "$REPO/bench/throughput.py" --csv "$RESULTS/throughput_b7.csv"
step "throughput: the gpu recipe (ResNet-18 at 224 px)"
timeout 120 python3 "$REPO/bench/throughput.py" --fast gpu --set model=resnet18 \
    --csv "$RESULTS/throughput_resnet18.csv"

step "test suite (torch of this machine)"
parallel=$(python3 -c 'import xdist' 2>/dev/null && echo "-n 8")   # pytest-xdist when present
(cd "$REPO" && timeout 400 python3 -m pytest -q -x -p no:cacheprovider $parallel 2>&1 | tail -4)
echo "pytest exit status $? (pipefail: pytest's own)"

work=$(mktemp -d) && cd "$work" || exit 1
step aug_img
python3 "$REPO/aug_img.py" "$SRC" 400 -p 224 -n example

step "train.py (cpu version, 3 epochs) on the GPU"
python3 "$REPO/train.py" --set epochs=3
python3 "$REPO/test.py" | tail -3

step "torchrun: DDP over NCCL, one process on the GPU"
timeout 120 python3 -m torch.distributed.run --standalone --nproc_per_node=1 "$REPO/train.py" \
    --version gpu --set data_dir=data/example --set epochs=1 --set input_size=112 | tail -2

step "paper version offline: must stop with a clear line"
python3 "$REPO/train.py" --version paper; echo "exit status $?"

step "paper version from scratch, 1 epoch: fp32 B7 batch 4"
python3 "$REPO/train.py" --version paper --set pretrained=false --set epochs=1
python3 "$REPO/test.py" --version paper | tail -2
python3 - <<'PY'
import pandas as pd
n = sum(1 for _ in open('data/example/manifest.csv')) - 1
m = pd.read_csv('data/example/manifest.csv'); train = (m['split'] == 'train').sum()
for v in ('cpu', 'paper'):
    h = pd.read_csv(f'runs/example/{v}/history.csv')
    print(v, f"{train} train crops/epoch, last epoch {h['seconds'].iloc[-1]} s "
             f"({train / h['seconds'].iloc[-1]:.0f} img/s incl. validation), data wait "
             f"{h['data_seconds'].iloc[-1]} s, val acc {h['val_acc'].iloc[-1]:.3f}")
PY
cp runs/example/cpu/history.csv "$RESULTS/history_cpu.csv"
cp runs/example/paper/history.csv "$RESULTS/history_paper.csv"
cp runs/example/cpu/classification_report.json "$RESULTS/report_cpu.json"
cp runs/example/cpu/confusion_matrix.png "$RESULTS/confusion_cpu.png"

step "gpu recipe, 3 epochs on 448 px crops (GPU-resident data), then test, predict, gradcam"
python3 "$REPO/aug_img.py" "$SRC" 600 -p 448 -n example448
python3 "$REPO/train.py" --dataset example448 --version gpu --set epochs=3
python3 "$REPO/test.py" --dataset example448 --version gpu | tail -1
python3 "$REPO/predict.py" "$SRC/$(ls "$SRC" | head -1)" --dataset example448 --version gpu | tail -1
python3 "$REPO/gradcam.py" --dataset example448 --version gpu --per-class 1 | tail -1
cp runs/example448/gpu/history.csv "$RESULTS/history_gpu.csv"
cp runs/example448/gpu/results.json "$RESULTS/results_gpu.json"
