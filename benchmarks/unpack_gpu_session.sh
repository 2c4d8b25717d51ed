#!/usr/bin/env bash
# Put what benchmarks/gpu_session.sh brought back into the repository (see GPU_SESSION.md):
#   bash benchmarks/unpack_gpu_session.sh FILES_AT
# FILES_AT: the folder the device tool's reply names (files_at). Replaces the baselines'
# checkpoint.pt and resume.pt in results/, unpacks session.tgz (metrics and reports) at the
# repository root, and records the learning curves' last points. Commits nothing.
set -eu
F=${1:?usage: unpack_gpu_session.sh FILES_AT}
cd "$(dirname "$0")/.."
for m in conv_pgp vln_resnet vln_ldc; do
  test -f "$F/results/$m/checkpoint.pt" || { echo "missing $F/results/$m/checkpoint.pt" >&2; exit 1; }
  test -f "$F/resume/$m/resume.pt" || { echo "missing $F/resume/$m/resume.pt" >&2; exit 1; }
done
for m in conv_pgp vln_resnet vln_ldc; do
  cp "$F/results/$m/checkpoint.pt" "results/$m/checkpoint.pt"
  cp "$F/resume/$m/resume.pt" "results/$m/resume.pt"
done
tar xzf "$F/session.tgz"
# (CURVES=0 skips this: a checkpoint without a validation at its last step is validated here, on the CPU)
if [ "${CURVES:-1}" != 0 ]; then
  PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" python benchmarks/learning_curves.py
fi
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" python - <<'PY'
from motionseg import checkpoint, zoo
for m in zoo.BASELINES:
    path = zoo.checkpoint_path(m)
    ckpt = checkpoint.read(path)
    zoo.load(m)  # the weights fit the model
    checkpoint.read_resume(path, ckpt)  # the resume state belongs to the same step
    runs = ckpt['provenance'].get('runs') or [{}]
    print(f"{m}: step {ckpt['step']}, last run's execution {runs[-1].get('execution')}")
PY
git status --short results
