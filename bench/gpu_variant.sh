#!/usr/bin/env bash
# The default recipe and a larger variant, trained on one GPU in about ten minutes (issue 12, "Ship it":
# "when a GPU is available, also train a larger variant on it and report both").
#
#   bench/gpu_variant.sh WORK            # on a machine with a GPU and 16 cores; results in WORK/summary.md
#
# 1. default: `jepa-mpc make-default-model --device cuda --workers N --eval_episodes 0`, the shipped
#    recipe on the GPU (64 px, 16 tokens per frame, predictor 128 x 4, 2000 steps), then reach and
#    grasp, 20 episodes each (seeds 1000-1019), in parallel jobs of EVAL_SPLIT episodes.
# 2. large: the recipe's episodes twice over (SEED .. SEED + 2N - 1, none in the evaluation's
#    1000-1049) at 128 px, collected while the GPU works on the default; a frozen random vit_micro with
#    patch 8 (16 x 16 = 256 tokens per frame, the 5-cm cube about one token wide); a predictor 256 x 6
#    trained for as many steps as fit TRAIN_SECONDS at the speed of a 40-step probe past its warm-up
#    (learning rate warmed up over the first 5%); then reach and grasp (20 episodes) and push and
#    pick-and-place (10) at 128 px, and both models' energy-landscape errors.
#
# Environment: PYTHON (python3), DEVICE (cuda), WORKERS (nproc), TRAIN_SECONDS (100), SCALE (1; episode
# counts, collected and evaluated: a smoke test on a CPU uses e.g. SCALE=0.02 DEVICE=cpu, which leaves
# the default recipe out), EVAL_SPLIT (5 episodes per job), LARGE_EXTRA (more train flags for the
# large model, e.g. a smaller predictor for that smoke test). Every command is printed as it runs.
set -euo pipefail
WORK=${1:?usage: bench/gpu_variant.sh WORK}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-$(nproc)}
TRAIN_SECONDS=${TRAIN_SECONDS:-100}
SCALE=${SCALE:-1}
EVAL_SPLIT=${EVAL_SPLIT:-5}
mkdir -p "$WORK"
T0=$(date +%s)
stamp() { echo "[gpu_variant +$(( $(date +%s) - T0 )) s] $*"; }
run() { stamp "\$ $*"; "$@"; }

# eval_jobs NAME CHECKPOINT IMAGE_SIZE TASK EPISODES: EPISODES from seed 1000 in jobs of EVAL_SPLIT, in the background
eval_jobs() {
    local name=$1 checkpoint=$2 size=$3 task=$4 episodes=$5 first
    for ((first = 0; first < episodes; first += EVAL_SPLIT)); do
        local n=$(( episodes - first < EVAL_SPLIT ? episodes - first : EVAL_SPLIT ))
        local out="$WORK/$name/eval/$task/seed$((1000 + first))"
        mkdir -p "$out"
        $PY -m jepa_mpc eval --task "$task" --episodes "$n" --seed $((1000 + first)) --policies world_model \
            --checkpoint "$checkpoint" --device "$DEVICE" --threads 1 --videos $(( first == 0 ? 1 : 0 )) \
            --sim.image_size "$size" --out "$out" > "$out/log.txt" 2>&1 &
    done
}

scaled() { $PY -c "import sys; print(max(1, round(int(sys.argv[1]) * float(sys.argv[2]))))" "$1" "$SCALE"; }

# 2. The larger variant: twice the episodes at 128 px, 256 tokens per frame, predictor 256 x 6. Its data
# is collected in the background while the GPU trains and evaluates the default model.
LARGE=$WORK/large
datasets=()
collection=$($PY -c "from jepa_mpc.default_model_recipe import COLLECTION
for row in COLLECTION: print(*row)")
while read -r task policy episodes seed; do datasets+=("$LARGE/data/${task}_${policy}"); done <<< "$collection"
collect_large() {
    while read -r task policy episodes seed; do
        run $PY -m jepa_mpc collect --task "$task" --policy "$policy" --episodes "$(scaled $((2 * episodes)))" \
            --seed "$seed" --out "$LARGE/data/${task}_${policy}" --sim.image_size 128 --workers "$WORKERS"
    done <<< "$collection"
}
collect_large > "$WORK/collect_large.log" 2>&1 &
collecting=$!

# 1. The shipped recipe on the GPU, evaluated in parallel jobs.
if [ "$SCALE" = 1 ]; then
    run $PY -m jepa_mpc make-default-model --device "$DEVICE" --workers "$WORKERS" --eval_episodes 0 --work "$WORK/default"
    stamp "default model trained"
    # One episode in the foreground first: a failing evaluation stops the run here, not after the large model.
    run $PY -m jepa_mpc eval --task reach --episodes 1 --seed 999 --policies world_model --device "$DEVICE" \
        --checkpoint "$WORK/default/predictor/model.pt" --videos 0 --out "$WORK/default/eval_smoke"
    eval_jobs default "$WORK/default/predictor/model.pt" 64 reach "$(scaled 20)"
    eval_jobs default "$WORK/default/predictor/model.pt" 64 grasp "$(scaled 20)"
fi

wait $collecting  # its exit status stops the run (set -e) if a collection failed
stamp "large data collected"
run $PY -m jepa_mpc init-encoder --preset vit_micro --encoder.img_size 128 --encoder.patch_size 8 --seed 0 --out "$LARGE/encoder"
LARGE_FLAGS=(--data "${datasets[@]}" --encoder "$LARGE/encoder/encoder.pt" --predictor.dim 256 --predictor.depth 6
             --predictor.num_heads 8 --run.batch_size 64 --optim.lr 1.5e-3 --run.device "$DEVICE" ${LARGE_EXTRA:-})
# The probe builds the feature cache the real run reuses, and measures the GPU's clips per second.
run $PY -m jepa_mpc train "${LARGE_FLAGS[@]}" --run.steps 40 --optim.warmup_steps 4 --out "$LARGE/probe" --overwrite true
STEPS=$($PY -c "import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1] + '/train.csv')))[-20:]  # past the first steps' warm-up
steps_per_second = statistics.median(float(r['clips_per_s']) for r in rows) / 64
print(max(200, min(int(float(sys.argv[2]) * steps_per_second), 30000)))" "$LARGE/probe" "$TRAIN_SECONDS")
stamp "large: $STEPS steps fit $TRAIN_SECONDS s"
run $PY -m jepa_mpc train "${LARGE_FLAGS[@]}" --run.steps "$STEPS" --optim.warmup_steps $(( STEPS / 20 )) \
    --out "$LARGE/predictor" --overwrite true
stamp "large model trained"
eval_jobs large "$LARGE/predictor/model.pt" 128 reach "$(scaled 20)"
eval_jobs large "$LARGE/predictor/model.pt" 128 grasp "$(scaled 20)"
eval_jobs large "$LARGE/predictor/model.pt" 128 push "$(scaled 10)"
eval_jobs large "$LARGE/predictor/model.pt" 128 pickplace "$(scaled 10)"
for name in default large; do
    [ -f "$WORK/$name/predictor/model.pt" ] || continue
    size=$([ "$name" = large ] && echo 128 || echo 64)
    $PY bench/landscape_error.py --checkpoint "$WORK/$name/predictor/model.pt" --device "$DEVICE" --episodes "$(scaled 10)" \
        --sim.image_size "$size" --out "$WORK/$name/landscape" > "$WORK/$name/landscape.log" 2>&1 &
done
stamp "waiting for the evaluations"
wait
$PY bench/gpu_variant_summary.py "$WORK" | tee "$WORK/summary.md"
stamp "done"
