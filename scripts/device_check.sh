#!/usr/bin/env bash
# One prepared run of every GPU check, for a machine with an NVIDIA GPU (the `device` tool).
# Writes everything under $OUT (default ./device-out). Each step records its exit code; a step
# that cannot run (no PyTorch, no NVML) leaves its reason in the log instead of stopping the rest.
#
#   OUT=/tmp/out bash scripts/device_check.sh
#
# Needs the package importable: either installed (pip install -e '.[nvml]') or, on an image
# without network, PYTHONPATH=src with typer, rich, numpy, pandas, pydantic, networkx, plotly,
# jinja2 and nvidia-ml-py present (carry wheels if the image lacks them).
set -u
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-src}
PY=${PY:-python3}
run() {  # name, command...
  local name=$1; shift
  echo "== $name: $*" | tee -a "$OUT/log.txt"
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  echo "rc=$?" | tee -a "$OUT/log.txt"
}
run nvidia-smi-q nvidia-smi -q
run nvidia-smi-topo nvidia-smi topo -m
run probe $PY -m gpuinfra.cli probe --save "$OUT/probe.json"
run probe-topo $PY -m gpuinfra.cli probe topo
run probe-from-smi $PY -m gpuinfra.cli probe --from "$OUT/nvidia-smi-q.out" --json
run topo-from-smi $PY -m gpuinfra.cli topo show "$OUT/nvidia-smi-topo.out" --render
for sc in variable-batch interleaved; do
  run "memory-$sc" $PY -m gpuinfra.cli probe memory --scenario "$sc" --json
  run "memory-$sc-expandable" $PY -m gpuinfra.cli probe memory --scenario "$sc" --config expandable_segments:True --json
done
$PY - <<'PY' >"$OUT/torch-env.out" 2>&1
import torch
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory)
PY
echo "done: $OUT" | tee -a "$OUT/log.txt"
