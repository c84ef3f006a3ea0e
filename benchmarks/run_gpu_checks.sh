#!/usr/bin/env bash
# The device checks, as one script for a machine with a CUDA GPU: the CUDA tests,
# then the speed of training and prediction on CUDA and on that machine's CPU.
# Run from the repository root: bash benchmarks/run_gpu_checks.sh
set -uo pipefail
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
python3 -c "import torch, sklearn, pandas, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'sklearn', sklearn.__version__, 'pandas', pandas.__version__, 'numpy', numpy.__version__)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m pytest -p no:cacheprovider -q -o addopts="" -m gpu tests/
python3 -m pytest -p no:cacheprovider -q -o addopts="" tests/test_training.py tests/test_network.py tests/test_encoder.py
python3 benchmarks/bench_device.py --n-samples 500000 --epochs 3 --batch-sizes 1024 4096 --devices cuda cpu
