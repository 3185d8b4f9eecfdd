#!/usr/bin/env bash
# The reference record on one GPU, as one command: calibrate the gpu scale's recipe (every candidate of its record,
# 3 seeds each, judged by the verdicts' preconditions), then execute the whole book at the gpu scale and pack it.
#
#   OUT=/path/to/out bash bench/gpu_record.sh                 # every step: calibrate train record
#   OUT=/path/to/out bash bench/gpu_record.sh calibrate       # only the calibration
#   OUT=/path/to/out bash bench/gpu_record.sh train record    # the record (train: its runs, ahead of its pages)
#   CANDIDATES="e80-dec2x e80" OUT=... bash bench/gpu_record.sh calibrate   # only these candidates (default: all)
#   SEEDS=N: the calibration's seeds (default 3, the rule's)
#   BUDGET_S=540: the seconds this command may take in all (e.g. the device call's limit less a margin): after
#     calibrating, the record starts only if its projected training fits the time left (testability.fits); else the
#     script stops with the calibration kept, and the device time left goes to other work. The step train stops
#     at the budget (exit 4) with every finished epoch kept in $RUNS: the same command again on the same machine
#     (within its warm time) goes on from there, so that a record can span two device calls of one session
#   SESSION_S: the device seconds left for this work over every call (default BUDGET_S); the projection must fit it
#   PAGES="table1_lcmae_ablation ...": a part of the record, these pages alone (record --only): it trains their runs,
#     projects their training, and adds them to the record, which starts from the committed records/$SCALE where
#     there is one, so that a record too long for one session grows by parts over several (commit each part)
#   PAGES=auto (with BUDGET_S): the part is chosen here, after the calibration (or from $CALIBRATION, default the
#     calibration in $OUT, else the committed bench/results/<scale>_scale_calibration.json): the pages the record
#     does not hold yet whose projected training fits the time left (testability --next-part), cheapest first
#
# Writes $OUT/gpu_scale_calibration.json (commit it as bench/results/gpu_scale_calibration.json),
# $OUT/gpu.tar.gz (the record, with every part so far: unpack it under records/, in place of records/gpu, and commit
# it) and $OUT/gpu_record.log (everything it printed).
# Many small runs train side by side on the one GPU ($JOBS worker processes, one thread each). The record needs
# papermill and the Jupyter packages: on a machine without internet they travel as wheels, made here by
# bench/device_wheels.sh into .whl/ (carry it); where papermill is missing, this script installs them into $SITE and
# puts that on PYTHONPATH. After a calibration that chose another candidate than the scale's recipe, the script stops:
# set the gpu record in lcmae_core/scales.py to the choice, commit the calibration, then run the record step.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}  # the device image's interpreter is python3 (it may have no "python")
OUT=${OUT:?set OUT to the folder the results go to}
JOBS=${JOBS:-12}
SCALE=${SCALE:-gpu}      # SCALE=smoke DEVICE=cpu JOBS=2: the same command rehearsed on a CPU in minutes
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-runs}  # the repository's run store: ignored by git, and kept between the calls on one device machine
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(calibrate train record)
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/lcmae_site}
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
if ! $PY -c "import papermill, ipykernel, myst_nb" 2>/dev/null; then
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "error: papermill, ipykernel or myst-nb is missing and $WHEELS holds no wheels; make them where pip reaches the registry with bash bench/device_wheels.sh, and carry .whl" >&2; exit 2; }
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "== installed $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
fi
mkdir -p "$OUT"
# the whole output also lands in $OUT, which comes back from a device call even when its time limit killed the command:
# every finished run's seconds (one JSON line each) then size the next attempt
exec > >(tee -a "$OUT/gpu_record.log") 2> >(tee -a "$OUT/gpu_record.log" >&2)
T0=$(date +%s)
# the CUDA paths the record's runs take (the photographs cropped on the GPU), checked before device time goes on them
# (tests/test_gpu_data.py -k on_the_gpu: seconds; skipped where there is no CUDA, as in a rehearsal); CHECKS=0 skips
if [ "${CHECKS:-1}" != 0 ]; then
  $PY -m pytest -q -p no:cacheprovider tests/test_gpu_data.py -k on_the_gpu || {
    echo "stopped: the GPU data path's checks failed (above): the record would train on wrong batches; fix them, or" \
         "run with CHECKS=0 to train regardless" >&2; exit 5; }
fi
ONLY=()  # a part: the pages, as record and plan take them (--only), and as the projection does (--pages)
[ -z "${PAGES:-}" ] || [ "$PAGES" = auto ] || read -r -a ONLY <<< "$PAGES"
[ "${PAGES:-}" != auto ] || [ -n "${BUDGET_S:-}" ] || { echo "error: PAGES=auto chooses the pages that fit the time left: set BUDGET_S too" >&2; exit 2; }
choose_part() {  # PAGES=auto: the record's next part, from the calibration's pace and the time left
  local table=${CALIBRATION:-$OUT/${SCALE}_scale_calibration.json} held="$RUNS/records/$SCALE" chosen
  [ -f "$table" ] || table=bench/results/${SCALE}_scale_calibration.json
  [ -d "$held" ] || held=records/$SCALE
  chosen=$($PY -m lcmae_core.testability --scale "$SCALE" --jobs "$JOBS" --project --out "$table" --run-root "$RUNS" \
             --next-part "$held" --within $(( ${SESSION_S:-$BUDGET_S} - ($(date +%s) - T0) )) | tee /dev/stderr)
  read -r -a ONLY <<< "$(sed -n 's/^next part: //p' <<< "$chosen")"
  echo "== the part: ${ONLY[*]}"
}
if [ "${PAGES:-}" = auto ] && [[ " ${STEPS[*]} " != *" calibrate "* ]]; then choose_part; fi
for s in "${STEPS[@]}"; do
  echo "== $s ($(date +%T))"
  case $s in
    calibrate) $PY -m lcmae_core.testability --scale "$SCALE" --seeds "${SEEDS:-3}" --jobs "$JOBS" --device "$DEVICE" \
                 --run-root "$RUNS" --out "$OUT/${SCALE}_scale_calibration.json" ${CANDIDATES:+--only $CANDIDATES}
      # how long the record would train here, from the calibration's own pace (before device time goes on it)
      $PY -m lcmae_core.testability --scale "$SCALE" --jobs "$JOBS" --project --out "$OUT/${SCALE}_scale_calibration.json"
      # a record at a recipe the calibration did not choose would be spent device time: stop here instead
      $PY -c "import json, sys; from lcmae_core import testability
chosen = json.load(open(sys.argv[1]))['chosen']
sys.exit(0 if chosen == testability.recipe_candidate(sys.argv[2]) else f'stopped: the calibration chose {chosen}, '
         'not the scale recipe: set it in lcmae_core/scales.py, commit the calibration, then run this script with '
         'the step record')" \
        "$OUT/${SCALE}_scale_calibration.json" "$SCALE"
      # a record that cannot end in the time left would be spent device time too
      if [ -n "${BUDGET_S:-}" ] && [[ " ${STEPS[*]} " == *" record "* || " ${STEPS[*]} " == *" train "* ]]; then
        if [ "${PAGES:-}" = auto ]; then choose_part; else
          $PY -m lcmae_core.testability --scale "$SCALE" --jobs "$JOBS" --project --out "$OUT/${SCALE}_scale_calibration.json" \
            --run-root "$RUNS" ${ONLY[@]:+--pages "${ONLY[@]}"} --within $(( ${SESSION_S:-$BUDGET_S} - ($(date +%s) - T0) ))
        fi
      fi ;;
    train)  # every run of the record; with BUDGET_S interrupted at the budget (less 15 s to stop), checkpoints kept
      TRAINS=()  # of a part's pages, those that train (plan refuses the others)
      [ ${#ONLY[@]} -eq 0 ] || read -r -a TRAINS <<< "$($PY -c "import sys; from lcmae_core.plan import PAGE_RUNS
print(' '.join(p for p in sys.argv[1:] if p in PAGE_RUNS))" "${ONLY[@]}")"
      if [ ${#ONLY[@]} -gt 0 ] && [ ${#TRAINS[@]} -eq 0 ]; then continue; fi
      plan=($PY -m lcmae_core plan --scale "$SCALE" --jobs "$JOBS" --device "$DEVICE" --run-root "$RUNS"
            ${TRAINS[@]:+--only "${TRAINS[@]}"})
      if [ -z "${BUDGET_S:-}" ]; then "${plan[@]}"; continue; fi
      left=$(( BUDGET_S - ($(date +%s) - T0) - 15 ))
      rc=124  # no time left is a budget that ended
      [ "$left" -le 0 ] || { rc=0; timeout -s INT -k 15 "$left" "${plan[@]}" || rc=$?; }
      if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "resume: the budget ended while the record's runs trained; every finished epoch is kept in $RUNS:" \
             "run bash bench/gpu_record.sh train record again on this machine, with the same RUNS, to go on" >&2
        exit 4
      fi
      [ "$rc" = 0 ] || exit "$rc" ;;
    record) # a part adds its pages to the record as committed (or as an earlier call on this machine left it)
            if [ ${#ONLY[@]} -gt 0 ] && [ -d "records/$SCALE" ] && [ ! -d "$RUNS/records/$SCALE" ]; then
              mkdir -p "$RUNS/records"; cp -r "records/$SCALE" "$RUNS/records/$SCALE"
            fi
            $PY -m lcmae_core record --scale "$SCALE" --out "$RUNS/records" --jobs "$JOBS" --device "$DEVICE" \
              --run-root "$RUNS" --no-progress ${ONLY[@]:+--only "${ONLY[@]}"}
            cp "$RUNS/records/$SCALE.tar.gz" "$OUT/" ;;  # one file: the device returns a few files, not a folder tree
    *) echo "unknown step $s (calibrate, train, record)" >&2; exit 2 ;;
  esac
done
echo "== done ($(date +%T))"
