#!/usr/bin/env bash
# The device checks, as one script for a machine with a CUDA GPU: the CUDA tests,
# then skdeepfm against DeepCTR-Torch and pytorch-fm on the GPU (frappe, 20 epochs,
# batch 4096; 1,000,000 generated rows at V = 1e3 and 1e6), written to the
# peers-gpu section of benchmarks/RESULTS.md.
# Run from the repository root: bash benchmarks/run_gpu_checks.sh [FRAPPE_DIR]
# (the peers installed as bench_peers.py says; FRAPPE_DIR defaults to ../shared/data/frappe).
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
frappe="${1:-../shared/data/frappe}"
python3 -c "import torch, sklearn, pandas, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'sklearn', sklearn.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# The CUDA tests (test files that hold them; the others need the dask extra), then
# the training loop's and optimiser's tests with CUDA present.
timeout 120 python3 -m pytest -p no:cacheprovider -q -o addopts="" tests/test_training.py tests/test_optim.py \
    tests/test_classifier.py tests/test_persistence.py -k "cuda or graph or training or optim"
timeout 280 python3 benchmarks/bench_peers.py --device cuda --data-dir "$frappe" --epochs 20 --batch-size 4096 \
    --only skdeepfm,skdeepfm-fp32,deepctr,torchfm --vocab 1e3,1e6 --time-budget 10 --latency-calls 50 \
    --section peers-gpu --write
