#!/usr/bin/env bash
# The checks that need a CUDA device, in one go: the tests marked `gpu`, then the sampling
# benchmark on CUDA only (fp32 eager, bf16 eager, bf16 + torch.compile; JSON per case), then
# the MFU levers on the European case (channels-last, max-autotune with CUDA graphs).
#   bash scripts/gpu_checks.sh [OUT_DIR]      (default benchmarks/results)
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu_checks.log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu_checks.log"
python3 -m pytest -m gpu -p no:cacheprovider -q tests/generators/test_flow_matching.py tests/generators/test_train.py tests/generators/test_rollout.py 2>&1 | tee -a "$out/gpu_checks.log"
tests=${PIPESTATUS[0]}
python3 -m benchmarks.sampling --devices cuda --out "$out/sampling_cuda.json" 2>&1 | tee -a "$out/gpu_checks.log"
bench=${PIPESTATUS[0]}
python3 -m benchmarks.sampling --devices cuda --cases medium:europe-0.25deg --out "$out/sampling_cuda_modes.json" \
  --cuda-modes fp32-eager bf16-compile bf16-compile-channels-last bf16-max-autotune-channels-last 2>&1 | tee -a "$out/gpu_checks.log"
modes=${PIPESTATUS[0]}
echo "gpu tests exit $tests, sampling benchmark exit $bench, MFU modes exit $modes" | tee -a "$out/gpu_checks.log"
exit $(( tests || bench || modes ))
