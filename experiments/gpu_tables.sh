#!/usr/bin/env bash
# The GPU runtimes, on a machine with an NVIDIA GPU (never run yet: the machines these were written on had none).
#
#   bash experiments/gpu_tables.sh [OUT_DIR]          # default runs/gpu-tables; everything it finds goes to OUT_DIR
#
# For each of ort-cuda, ort-trt and tensorrt, in fp32 and fp16 (int8 comes with every table: the QDQ blocks are
# measured where the runtime runs them and marked unsupported where it cannot): build the mbv3 table at 224 px,
# validate it on 40 held-out subnets, then put the tables through experiments/bench_devices.py. A step that fails
# is logged (OUT_DIR/<step>.log) and the script goes on, so one broken runtime does not hide what the others show.
# Quick protocol (warmup 10, repeats 20, rounds 3) and --calibrate 8 keep it to minutes per table on a GPU.
set -u
OUT=${1:-runs/gpu-tables}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
HWNAS=${HWNAS:-.venv/bin/hwnas}
export OMP_WAIT_POLICY=PASSIVE
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {  # step NAME CMD...: run, log, record the exit status; never stop the script
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0))s" | tee -a "$SUMMARY"
  [ $rc -eq 0 ] || tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
  return $rc
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
  $PY -c "import tensorrt as t; print('tensorrt', t.__version__)" 2>&1 | tail -n 1
  $HWNAS latency backends; } > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt" | tee -a "$SUMMARY"

TABLES=()
for backend in ort-cuda ort-trt tensorrt; do
  for precision in fp32 fp16; do
    name="mbv3-r224-$backend-$precision"
    table="$OUT/$name.json"
    if step "build-$name" $HWNAS latency build --space mbv3 --backend "$backend" --precision "$precision" \
         --resolutions 224 --calibrate 8 --warmup 10 --repeats 20 --rounds 3 --out "$table"; then
      step "validate-$name" $HWNAS latency validate --table "$table" --n 40 --json
      TABLES+=("$table")
      $PY - "$table" >> "$SUMMARY" <<'EOF'
import collections, json, sys
t = json.load(open(sys.argv[1]))
bits = collections.Counter(k.rsplit(":", 1)[1] for k in t["entries"])
unsup = collections.Counter(k.rsplit(":", 1)[1] for k in t["unsupported"])
print(f"    {sys.argv[1]}: measured {dict(bits)}, unsupported {dict(unsup)}; first reasons:",
      list(t["unsupported"].values())[:2])
EOF
    fi
  done
done

if [ ${#TABLES[@]} -ge 2 ]; then
  IFS=, ; list="${TABLES[*]}" ; unset IFS
  step bench-devices $PY -m experiments.bench_devices --tables "$list" --out "$OUT/bench-devices"
fi
echo "done: $SUMMARY"
