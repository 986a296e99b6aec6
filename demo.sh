#!/usr/bin/env bash
# The whole pipeline on SYNTHETIC SEM-like frames, in a few minutes (on the GPU when there is one):
#   bash demo.sh
# installs the requirements, draws 3 synthetic classes into demo_source/, cuts crops into
# data/demo/, trains the `cpu` version into runs/demo/cpu/ and tests it there.
# The frames are made up (tests/synthetic_sem.py): the accuracy says nothing about real SEM data.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
set -x
"$PYTHON" -m pip install -q -r requirements.txt
"$PYTHON" tests/synthetic_sem.py demo_source --classes 3 --frames 12
"$PYTHON" aug_img.py demo_source 300 -p 224 -t 10 -r 20 -n demo --force
"$PYTHON" train.py --dataset demo --version cpu --force
"$PYTHON" test.py --dataset demo --version cpu
