#!/usr/bin/env bash
# The main job, end to end on bundled synthetic sample data (idempotent):
#   sample logs -> Beam dataset job -> streaming training over train/ partitions
#   -> SavedModel export -> print its path, the test metrics and the TF Serving command.
# Everything lands under $INFNET_WORKDIR (default ./workdir); see WORKSPACE.md.
# Sizes: NUM_IMPRESSIONS (default 200000). Training flags: DEMO_TRAIN_FLAGS (default a CPU-sized
# INFNet, d=32 with 2 blocks and batch 1024, so the demo finishes in minutes on 2 cores; set
# DEMO_TRAIN_FLAGS="" for the paper's d=64, 4 blocks, batch 4096). Extra args go to the training job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$root/scripts/ensure_env.sh" | tail -n 1)"
cd "$root"

work="${INFNET_WORKDIR:-$root/workdir}"
spec="feature_specs/kuairand_synthetic.yaml"
raw="$work/sample/raw"
data="$work/sample/dataset"
model_dir="$work/sample/model"
exports="$work/exports"
model_name="infnet_kuairand"
n="${NUM_IMPRESSIONS:-200000}"
train_flags="${DEMO_TRAIN_FLAGS---d=32 --num_blocks=2 --batch_size=1024}"

stage() { printf '\n==> %s\n' "$*"; }
have() { [ -f "$root/$1" ]; }
stop_here() { printf '\n[demo] stopping after the stages that exist: %s is not built yet (%s).\n' "$1" "$2"; exit 0; }

stage "1/5 sample logs: $raw ($n impressions)"
if [ -f "$raw/events.parquet" ] && [ -f "$raw/.num_impressions" ] && [ "$(cat "$raw/.num_impressions")" = "$n" ]; then
  echo "reusing existing sample data"
else
  "$py" -m pipelines.make_sample_data --output="$raw" --num_impressions="$n" --seed=7
  echo "$n" > "$raw/.num_impressions"
fi

stage "2/5 check the feature spec"
"$py" -m infnet_tf.spec "$spec"

stage "3/5 Beam dataset job: $data"
have pipelines/build_dataset.py || stop_here "the Beam dataset job" "issue 3"
if [ -f "$data/_DATASET.json" ] && [ "$data/_DATASET.json" -nt "$raw/events.parquet" ]; then
  echo "reusing existing dataset ($data/_DATASET.json)"
else
  "$py" -m pipelines.build_dataset --spec="$spec" --raw="$raw" --output="$data"
fi

stage "4/5 streaming training over train/ partitions: $model_dir"
have infnet_tf/training/streaming.py || stop_here "the streaming trainer" "issue 6"
"$py" -m infnet_tf.train --spec="$spec" --data="$data" --model_dir="$model_dir" --mode=streaming \
  --export_base="$exports" --model_name="$model_name" $train_flags "$@"

stage "5/5 export a SavedModel version for TF Serving: $exports/$model_name"
have export/export_model.py || stop_here "the SavedModel export" "issue 7"
"$py" -m export.export_model --model_dir="$model_dir" --data="$data" --export_base="$exports" \
  --model_name="$model_name"

stage "done"
"$py" - "$model_dir" "$exports/$model_name" <<'PY'
import json, os, sys
model_dir, base = sys.argv[1], sys.argv[2]
versions = sorted((int(v) for v in os.listdir(base) if v.isdigit()), reverse=True)
print(f"SavedModel: {base}/{versions[0]}")
path = os.path.join(model_dir, "metrics.json")
if os.path.exists(path):
    metrics = json.load(open(path)).get("test", {})
    for task, m in metrics.items():
        print(f"test {task:>10}: " + "  ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)))
print("Serve it with TF Serving:")
print(f"  tensorflow_model_server --rest_api_port=8501 --port=8500 --model_name={os.path.basename(base)} "
      f"--model_base_path={base}")
print(f"  docker run -p 8501:8501 -p 8500:8500 -v {base}:/models/{os.path.basename(base)} "
      f"-e MODEL_NAME={os.path.basename(base)} tensorflow/serving:2.16.1")
PY
