"""tools/slim_checkpoints.py: committed checkpoints made small without losing what the book reads."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from motionseg import checkpoint, results, train, zoo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import slim_checkpoints  # noqa: E402


def _tiny_run(root: Path, name: str = "conv_pgp") -> Path:
    cfg = zoo.training_config(name, "quick", steps=2, val_every=2, checkpoint_every=2, n_val=2, batch_size=2,
                              n_train=4, size=64)
    out = zoo.checkpoint_path(name, root)
    train.train(cfg, out, progress=False)
    return out


def test_summarise_keeps_the_training_facts(tmp_path: Path) -> None:
    out = _tiny_run(tmp_path)
    before = results.training_summary("conv_pgp", tmp_path)
    assert slim_checkpoints.main(["--summarise", str(out)]) == 0
    assert not out.exists() and not out.with_name("resume.pt").exists()
    assert results.training_summary("conv_pgp", tmp_path) == before
    assert before["steps"] == 2


def test_compact_keeps_the_weights_and_a_resumable_state(tmp_path: Path) -> None:
    out = _tiny_run(tmp_path)
    weights = checkpoint.read(out)["state_dict"]
    assert slim_checkpoints.main(["--compact", str(out)]) == 0
    after = checkpoint.read(out)
    assert all(torch.equal(weights[k], after["state_dict"][k]) for k in weights)
    assert "compact" in checkpoint.read_resume(out, after)
