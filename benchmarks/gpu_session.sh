#!/usr/bin/env bash
# One prepared device session for the baselines (benchmarks/GPU_SESSION.md): step times of
# every model, resumed training of each baseline, the full test set, learning-curve projections.
# Run from anywhere; writes only under $WORK and $OUT:
#   $OUT/results/<model>/checkpoint.pt   weights, for results/
#   $OUT/resume/<model>/resume.pt        compact resume states
#   $OUT/session.tgz                     metrics, gpu_session.json, benchmark and log (paths from the repo root)
# Environment: OUT (required), BUDGET seconds (default 540), WORK (default /tmp/motionseg_gpu),
# PYTHON (default python3), MOTIONSEG_COMMIT (the commit, where the copy has no .git).
# Extra arguments go to benchmarks/gpu_session.py (e.g. --dry-run, --execution fp32).
set -u
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
WORK=${WORK:-/tmp/motionseg_gpu}
BUDGET=${BUDGET:-540}
PY=${PYTHON:-python3}
rm -rf "$WORK"
mkdir -p "$WORK/bundle/results/benchmarks" "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$WORK/bundle/results/benchmarks/gpu_session.log"
{ date -u; nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv 2>/dev/null; } >"$LOG"
# the driver keeps to BUDGET itself; the timeout is the backstop (SIGINT: a run saves its checkpoint)
timeout --signal=INT --kill-after=20 $((BUDGET + 30)) "$PY" benchmarks/gpu_session.py \
    --budget "$BUDGET" --work "$WORK" --out "$OUT" "$@" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "gpu_session.py exit status $rc" >>"$LOG"
tar czf "$OUT/session.tgz" -C "$WORK/bundle" results
echo "gpu_session: exit status $rc; files to bring back:"
(cd "$OUT" && find . -type f -printf '%p %s bytes\n' | sort)
exit "$rc"
