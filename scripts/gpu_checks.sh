#!/usr/bin/env bash
# The checks that need a CUDA device, in one go: the tests marked `gpu`, the MFU levers on the
# European case at the forecast's batch (4 initial times x 50 members: inductor's layout
# optimisation off, then with coordinate-descent tuning, the GPU time of a call by kernel kind;
# JSON after each mode; the levers measured before are in sampling_cuda_modes.json,
# sampling_cuda_bf16_weights.json and sampling_cuda_kernels.json; then the large model),
# then the sampling benchmark
# on CUDA (fp32 eager, bf16 eager, bf16 + torch.compile; JSON per case). Each step has a time
# limit so that one device lease of ~10 minutes brings back what it measured.
#   bash scripts/gpu_checks.sh [OUT_DIR] [SKIP_BENCHMARK]   (default benchmarks/results)
# With SKIP_BENCHMARK set, the rest fits one 600 s device call (about 60 s of tests, 250 s of
# medium-model modes, 200 s of large-model modes on an H100).
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu_checks.log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu_checks.log"
timeout 180 python3 -m pytest -m gpu -p no:cacheprovider -q tests/generators/test_flow_matching.py tests/generators/test_train.py tests/generators/test_rollout.py 2>&1 | tee -a "$out/gpu_checks.log"
tests=${PIPESTATUS[0]}
timeout 420 python3 -m benchmarks.sampling --devices cuda --cases medium:europe-0.25deg --inits 4 --members 50 \
  --repeats 3 --profile --out "$out/sampling_cuda_nchw.json" --cuda-modes fp32-eager bf16-compile \
  bf16-compile-nchw bf16-compile-nchw-coordinate-descent 2>&1 | tee -a "$out/gpu_checks.log"
modes=${PIPESTATUS[0]}
# the large model (widths doubled: 4x the FLOPs for 2x the norms' memory traffic), at half the batch
timeout 300 python3 -m benchmarks.sampling --devices cuda --cases large:europe-0.25deg --inits 2 --members 50 \
  --repeats 3 --profile --out "$out/sampling_cuda_large.json" --cuda-modes fp32-eager bf16-compile \
  bf16-compile-nchw 2>&1 | tee -a "$out/gpu_checks.log"
large=${PIPESTATUS[0]}
bench=0
if [ -z "${2:-}" ]; then
  timeout 300 python3 -m benchmarks.sampling --devices cuda --out "$out/sampling_cuda.json" 2>&1 | tee -a "$out/gpu_checks.log"
  bench=${PIPESTATUS[0]}
fi
echo "gpu tests exit $tests, MFU modes exit $modes, large model exit $large, sampling benchmark exit $bench" | tee -a "$out/gpu_checks.log"
exit $(( tests || bench || modes || large ))
