#!/usr/bin/env bash
# The GPU figures of the README's Speed and Large-sweeps sections, for a lent CUDA machine with no network
# (../shared/gpu/README.md: its python3 has torch, but not pydantic, submitit, mnist1d ...: they come as
# wheels in .whl/, an ignored folder, named in the device call's `carry`). One part per call, each well
# under the 10-minute limit of a call; results are written under $OUT (or ./gpu-results):
#
#     bash bench/gpu.sh mlp     # 16 and 64 MLP trials: vs_sequential, vs_hand, the epoch overhead
#     bash bench/gpu.sh models  # 64 CNN and 64 GRU trials: vs_sequential (--quick)
#     bash bench/gpu.sh scale   # 1,024 quickstart trials x 20 epochs in groups of 64: the whole process's time
#
# Each bench prints ratios against a baseline measured in the same run (bench/sweep_speed.py,
# bench/sweep_scale.py); nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-}
case "$part" in
  mlp | models | scale) ;;
  *) echo "bench/gpu.sh: which part? mlp | models | scale (got '$part')" >&2; exit 2 ;;
esac
out=${OUT:-gpu-results}
mkdir -p "$out"
if ! python3 -c "import pydantic, submitit, mnist1d, typer, rich" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "bench/gpu.sh: no wheels in .whl/ (see ../shared/gpu/README.md)" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# everything the benches import, checked before any of them runs (mnist1d needs scipy at import; report, pandas
# and matplotlib): one line naming what is missing, instead of a traceback minutes in
python3 - <<'PY' || exit 2
import importlib
missing = []
for name in ("torch", "numpy", "scipy", "pandas", "matplotlib", "yaml", "pydantic", "submitit", "mnist1d", "typer", "rich"):
    try:
        importlib.import_module(name)
    except Exception as error:
        missing.append(f"{name} ({type(error).__name__}: {error})")
if missing:
    raise SystemExit("bench/gpu.sh: cannot import " + "; ".join(missing) + " (wheels for them in .whl/: ../shared/gpu/README.md)")
PY
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  torch.cuda.get_device_name() if torch.cuda.is_available() else '')" | tee "$out/device.txt"
case "$part" in
  mlp)
    timeout 280 python3 bench/sweep_speed.py 2>&1 | tee "$out/speed-mlp-16.txt"
    timeout 280 python3 bench/sweep_speed.py --seeds 8 --batch 64 2>&1 | tee "$out/speed-mlp-64.txt" ;;
  models)
    timeout 280 python3 bench/sweep_speed.py --quick --seeds 8 --batch 64 --model cnn 2>&1 | tee "$out/speed-cnn-64.txt"
    timeout 280 python3 bench/sweep_speed.py --quick --seeds 8 --batch 64 --model gru 2>&1 | tee "$out/speed-gru-64.txt" ;;
  scale)
    # the whole process, start-up included (the goal: under 20 s), and the bench's own split of it
    TIMEFORMAT="whole process: %R s"
    { time timeout 560 python3 bench/sweep_scale.py --sizes 1024 --epochs 20 --batch 64; } 2>&1 \
      | tee "$out/scale-1024x20.txt" ;;
esac
