"""Test configuration shared by the unit tests and the notebook checks (nbval)."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
import notebook_outputs  # noqa: E402

# nbval compares stored and fresh outputs within stated tolerances, not as bytes
# (tests/notebook_outputs.py says which and why).
notebook_outputs.install()

# Kernels started by nbval inherit this: same hashing, same outputs on every run.
os.environ["PYTHONHASHSEED"] = "0"
# Keep the CPU thread count fixed so numbers do not depend on the machine's size.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# The stored outputs of the chapters are those of the quick profile: test in it whatever the
# hardware (with CUDA the default profile would be the full one).
os.environ["MOTIONSEG_PROFILE"] = "quick"
