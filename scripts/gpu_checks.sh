#!/usr/bin/env bash
# The checks that need a CUDA device, in one go, sized for one 600 s device call:
# 1. the tests marked `gpu` (-rP: the figures they print, such as a batch's CUDA memory);
# 2. the MFU levers on the `large` model (widths doubled: 4x the FLOPs of `medium` for 2x the
#    memory traffic of its norms) on the European 0.25 deg grid, at 2 initial times x 50 members:
#    fp32 eager (TF32 convolutions, PyTorch's default: the reference of the speed-ups), bf16 +
#    torch.compile with coordinate-descent tuning (the fastest mode in sampling_cuda_large.json),
#    then fp32 eager with TF32 off (the strict fp32 reference; last, as the slowest);
#    GPU time by kernel kind;
# 3. the `medium` model at the forecast's batch (4 x 50): fp32 eager, bf16 + torch.compile and
#    strict fp32 eager, so that this card's figures sit beside the earlier ones.
# Each step has a time limit, and the benchmark writes its JSON after each mode, so a step cut
# short keeps what it measured. With FULL set, the default sampling benchmark follows (both
# grids, fp32 eager / bf16 eager / bf16 + compile: sampling_cuda.json).
#   bash scripts/gpu_checks.sh OUT_DIR [FULL]    (on the device: OUT_DIR=$OUT)
# OUT_DIR has no default: the committed figures in benchmarks/results are replaced only by
# copying a run's files there on purpose.
set -uo pipefail
out=${1:?usage: bash scripts/gpu_checks.sh OUT_DIR [FULL] (e.g. \$OUT on the device)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu_checks.log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu_checks.log"
timeout 100 python3 -m pytest -m gpu -p no:cacheprovider -q -rP tests/generators/test_flow_matching.py \
  tests/generators/test_train.py tests/generators/test_rollout.py \
  tests/generators/test_forward_memory.py 2>&1 | tee -a "$out/gpu_checks.log"
tests=${PIPESTATUS[0]}
timeout 330 python3 -m benchmarks.sampling --devices cuda --cases large:europe-0.25deg --inits 2 \
  --members 50 --repeats 2 --profile --out "$out/sampling_cuda_large.json" --cuda-modes fp32-eager \
  bf16-compile-coordinate-descent fp32-eager-no-tf32 2>&1 | tee -a "$out/gpu_checks.log"
large=${PIPESTATUS[0]}
timeout 150 python3 -m benchmarks.sampling --devices cuda --cases medium:europe-0.25deg --inits 4 \
  --members 50 --repeats 2 --out "$out/sampling_cuda_medium.json" --cuda-modes fp32-eager \
  bf16-compile fp32-eager-no-tf32 2>&1 | tee -a "$out/gpu_checks.log"
medium=${PIPESTATUS[0]}
bench=0
if [ -n "${2:-}" ]; then
  timeout 300 python3 -m benchmarks.sampling --devices cuda --out "$out/sampling_cuda.json" 2>&1 | tee -a "$out/gpu_checks.log"
  bench=${PIPESTATUS[0]}
fi
echo "gpu tests exit $tests, large model exit $large, medium model exit $medium, sampling benchmark exit $bench" | tee -a "$out/gpu_checks.log"
exit $(( tests || large || medium || bench ))
