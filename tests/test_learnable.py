"""The paper's learnable extension (src/motionseg/learnable.py) and the authors' released weights."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from motionseg import authors, data, zoo
from motionseg.data import DataFileError
from motionseg.learnable import DenseNet, LearnableModel
from motionseg.zero_param import count_parameters


def test_nets_have_the_papers_size_and_the_release_names() -> None:
    model = LearnableModel()
    assert count_parameters(model) == 2127
    assert [sum(p.numel() for p in model.nets[n].parameters()) for n in ("modelA", "modelFG", "modelBG")] == [670, 670, 787]
    release = authors.read("learnable_authors")
    for net in authors.NET_KEYS:
        assert {k: tuple(v.shape) for k, v in release[net].items()} == \
            {k: tuple(v.shape) for k, v in model.nets[net].state_dict().items()}


def test_densenet_concatenates_input_first() -> None:
    net = DenseNet(2)
    with torch.no_grad():
        for conv in (net.c1, net.c2, net.c3, net.c4):
            conv.weight.zero_()
            conv.bias.zero_()
        net.c4.weight[0, 1, 1, 1] = 1.0  # channel 1 of c4's input is the net's second input channel
    x = torch.rand(1, 2, 8, 8)
    torch.testing.assert_close(net(x), x[:, 1])


def test_alpha_refinement_decays_and_can_be_switched_off() -> None:
    x = torch.from_numpy(data.make_sequences(1, split="train", seed=3)["frames"])[:, :10]
    torch.manual_seed(0)
    model = LearnableModel().eval()
    off = LearnableModel({"refine_alpha": False}).eval()
    off.load_state_dict(model.state_dict())
    assert not torch.equal(model(x, 2), off(x, 2))
    assert torch.equal(model.without("modelA")(x, 2), off.without("modelA")(x, 2))
    with pytest.raises(ValueError, match="unknown nets"):
        model.without("net_alpha")


def _val(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = torch.from_numpy(data.make_sequences(n, split="train", seed=1000)["frames"])
    return seqs[:, :10], seqs[:, 10:]


@pytest.mark.parametrize("name", ["zero_param_authors", "learnable_authors"])
def test_released_weights_predict_far_better_than_copying(name: str) -> None:
    seed, target = _val()
    model = zoo.load(name)
    with torch.no_grad():
        mse = float(((model(seed, 10) - target) ** 2).mean())
    copy = float(((seed[:, -1:] - target) ** 2).mean())
    assert mse < copy / 2.5, (mse, copy)
    # one plausible wiring error (the rows of the correction gains in another order) costs it
    wrong = zoo.load(name, options={"rows": "a,fg,bg"})
    with torch.no_grad():
        assert float(((wrong(seed, 10) - target) ** 2).mean()) > mse


def test_vendored_files_are_checked(tmp_path: Path) -> None:
    for name in authors.FILES:
        shutil.copy(authors.path_of(name), tmp_path)
    assert authors.read("zero_param_authors", tmp_path)["learnableGains"].shape == (3, 20)
    target = tmp_path / "NoParam.th"
    raw = bytearray(target.read_bytes())
    raw[-40] ^= 1
    target.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="NoParam.th has changed"):
        authors.read("zero_param_authors", tmp_path)
    (tmp_path / "WithParam.th").unlink()
    with pytest.raises(DataFileError, match="WithParam.th is missing"):
        authors.load("learnable_authors", folder=tmp_path)


def test_released_models_are_not_trained_here() -> None:
    with pytest.raises(ValueError, match="not trained here"):
        zoo.training_config("learnable_authors")
