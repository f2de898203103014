#!/bin/bash
# `mcss reproduce --preset curve` with its 10 trainings run in parallel (a GPU or a many-core
# machine): each training is launched exactly as the preset would, then the preset itself runs,
# reusing the finished trainings for evaluation, retrieval and the report.
#
#   OUT=results-folder bash benchmarks/reproduce_curve_parallel.sh [run-folder]
# Results: $OUT/curve_results.json and $OUT/curve.tgz (report, logs). TP/DP: train/data preset.
PY=${PY:-python3}; TP=${TP:-quick}; DP=${DP:-quick}; C=${1:-/tmp/curve}
export PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8 OMP_NUM_THREADS=1
[ -e "$C" ] && { echo "$C exists: give a new run folder"; exit 2; }
mkdir -p "$OUT" "$C/runs"; SECONDS=0
$PY -m mcss synth --preset $DP --out $C/data > $OUT/synth.log 2>&1 || { tail -5 $OUT/synth.log; exit 1; }
echo "synth $SECONDS s"
for label in 1 5 10 50 100; do
  for variant in baseline mcss; do
    extra=""; [ $variant = baseline ] && extra="--set lam=0"
    $PY -m mcss train --data $C/data --out $C/runs/$variant-${label}pct-s0 --preset $TP $extra \
      --set labelled=$label% --set seed=0 > $C/$variant-$label.log 2>&1 &
  done
done
wait
echo "trained $SECONDS s"; grep -h "final validation" $C/*.log
$PY -m mcss reproduce --preset curve --out $C 2>&1 | grep -v "step/s\|it/s" | tail -25
echo "reproduced $SECONDS s"
cd $C && cp results.json $OUT/curve_results.json; tar czf $OUT/curve.tgz report results.json runs/*/metrics.csv runs/*/eval-test.json runs/*/config.yaml retrieval 2>/dev/null
echo "total $SECONDS s"
