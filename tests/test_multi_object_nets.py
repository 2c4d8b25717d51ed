"""The multi-object model with nets: the held estimate of multi_object, refined by three small nets."""
from __future__ import annotations

import pytest
import torch

from motionseg import data, train
from motionseg.multi_object import MultiObject
from motionseg.multi_object_nets import MultiObjectNets


@pytest.fixture(scope="module")
def two_digits() -> torch.Tensor:
    seq = data.make_sequences(4, split="train", seed=3, n_digits=2, size=64, max_speed=1.5)
    return torch.from_numpy(seq["frames"])


def _perturb(model: MultiObjectNets) -> MultiObjectNets:
    """Nets that change what they see everywhere (a bias on each output)."""
    with torch.no_grad():
        for net in model.nets.values():
            net.convs[-1].bias.fill_(0.3)
    return model


def test_without_its_nets_it_is_multi_object_exactly(two_digits) -> None:
    x = two_digits[:, :10]
    plain = MultiObject().eval()
    nets = _perturb(MultiObjectNets()).without("alpha", "fg", "bg").eval()
    nets.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        assert torch.equal(nets(x, 10), plain(x, 10))
        assert not torch.equal(_perturb(MultiObjectNets()).eval()(x, 10), plain(x, 10))


def test_only_the_nets_train(two_digits) -> None:
    model = MultiObjectNets().train()
    loss = train.sequence_loss(model, two_digits, 10)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.nets.parameters())
    assert all(not p.requires_grad and p.grad is None for p in model.gains.parameters())


def test_an_empty_layer_stays_empty_whatever_the_nets_add() -> None:
    seq = data.make_sequences(3, split="train", seed=0, size=64, max_speed=1.5)
    x = torch.from_numpy(seq["frames"])
    model = _perturb(MultiObjectNets()).eval()
    with torch.no_grad():
        model(x[:, :10], 10)
    assert not model.layers.present[:, 1].any()
    assert (model.layers.alpha[:, 1] == 0).all() and (model.layers.premult[:, 1] == 0).all()
    assert (model.layers.premult <= model.layers.alpha).all()


def test_the_background_net_enters_only_where_the_background_was_not_seen() -> None:
    model = _perturb(MultiObjectNets())
    bg = torch.rand(2, 16, 16)
    seen = torch.ones(2, 16, 16)
    seen[:, 4:8, 4:8] = 0.0
    out = model.refine_background(bg, seen)
    assert torch.equal(out[seen == 1], bg[seen == 1])
    assert not torch.allclose(out[seen == 0], bg[seen == 0])


def test_unknown_nets_are_one_line() -> None:
    with pytest.raises(ValueError, match="unknown nets"):
        MultiObjectNets().without("mask")


def _nets_bench(nets_two: float) -> dict:
    models = lambda nets: {"multi_object": {"mse": 1.0, "iou": 0.8}, "multi_object_nets": {"mse": nets, "iou": 0.85},  # noqa: E731
                           **{f"multi_object_nets without {n}": {"mse": 0.95, "iou": 0.8} for n in ("alpha", "fg", "bg")}}
    return {"sets": {"1 digit, all photos": models(0.9), "1 digit, held_out photos": models(0.9),
                     "2 digits, all photos": models(nets_two), "2 digits, held_out photos": models(0.9)}}


@pytest.mark.parametrize("nets_two, best", [(0.9, "`multi_object_nets`"), (1.1, "`multi_object`")])
def test_the_nets_model_is_called_best_only_where_it_is_lower_on_every_validation_set(nets_two, best) -> None:
    from motionseg import object_results
    bench = {"sets": {s: {} for s in ("one_digit", "two_digits")}}
    phrases = object_results.nets_phrases(_nets_bench(nets_two), bench)
    assert phrases["mo_nets_best"] == best
    assert phrases["mo_nets_val_two"] == nets_two and phrases["mo_plain_val_two_held"] == 1.0
    table = object_results.nets_table(_nets_bench(nets_two))
    assert list(table.columns) == ["1 digit", "1 digit, held-out", "2 digits", "2 digits, held-out", "IoU, 2 digits"]
    assert table.loc["multi_object_nets", "2 digits"] == nets_two
    assert table.loc["multi_object_nets", "IoU, 2 digits"] == 0.85


def test_the_layer_nets_are_called_a_pair_only_where_either_alone_does_worse_than_none() -> None:
    from motionseg import object_results
    bench = {"sets": {s: {} for s in ("one_digit", "two_digits")}}
    nets = _nets_bench(0.9)
    assert "Each layer net helps on its own" in object_results.nets_phrases(nets, bench)["mo_nets_pair"]
    for models in nets["sets"].values():
        models["multi_object_nets without alpha"]["mse"] = models["multi_object_nets without fg"]["mse"] = 1.2
    assert "work as a pair" in object_results.nets_phrases(nets, bench)["mo_nets_pair"]
    for models in nets["sets"].values():
        models["multi_object_nets without fg"]["mse"] = 0.95  # the mask net alone helps
    assert "appearance net alone does worse" in object_results.nets_phrases(nets, bench)["mo_nets_pair"]


def test_a_layer_no_sequence_of_the_batch_has_is_not_refined_and_predicts_alike(monkeypatch) -> None:
    seq = data.make_sequences(3, split="train", seed=0, size=64, max_speed=1.5)
    x = torch.from_numpy(seq["frames"][:, :10])
    model = _perturb(MultiObjectNets()).eval()
    calls: list[int] = []
    refine = model.refine_layer
    monkeypatch.setattr(model, "refine_layer", lambda pm, a: calls.append(1) or refine(pm, a))
    with torch.no_grad():
        skipped = model(x, 10)
    assert not model.layers.present[:, 1].any()
    assert len(calls) == model.options.phase_templates  # the first layer's templates only
    present = model.layers.present.clone()
    # with the second layer marked present in one sequence, it is refined, and multiplied by 0 elsewhere
    estimate = MultiObject.estimate

    def one_more(self, x, first_alpha=None):
        layers, templates = estimate(self, x, first_alpha)
        layers.present = layers.present.clone()
        layers.present[0, 1] = True
        return layers, templates
    monkeypatch.setattr(MultiObject, "estimate", one_more)
    with torch.no_grad():
        refined = model(x, 10)
    assert len(calls) == 3 * model.options.phase_templates
    assert torch.equal(skipped[1:], refined[1:]) and present[:, 0].all()


@pytest.mark.parametrize("last, converged", [(0.4, False), (0.5 * 0.995, True)])
def test_the_training_phrases_judge_convergence_by_the_last_quarter(last: float, converged: bool) -> None:
    from types import SimpleNamespace

    from motionseg import object_results
    # best at 3/4 of the steps (step 300): 0.5
    model = SimpleNamespace(history={"val_step": [0, 100, 200, 300, 400], "val_mse": [1.0, 0.8, 0.5, 0.6, last]},
                            nets=MultiObjectNets().nets, trained_steps=400, provenance={"wall_seconds": 120.0})
    phrases = object_results.nets_training_phrases(model)
    assert phrases["mo_nets_quarter_fall"] == pytest.approx(100 * (1 - last / 0.5))
    assert ("has converged" in phrases["mo_nets_convergence"]) == converged
    assert ("--resume" in phrases["mo_nets_convergence"]) != converged
    assert phrases["mo_nets_start"] == 1.0 and phrases["mo_nets_best_val"] == last and phrases["mo_nets_minutes"] == 2.0
    assert phrases["mo_nets_params"] == 2361


class _Told(torch.nn.Module):
    """A stand-in multi-object model that predicts the true future and keeps the given masks as its layers."""

    def __init__(self, future: torch.Tensor, alpha: torch.Tensor) -> None:
        super().__init__()
        self.future, self.alpha = future, alpha

    def forward(self, x: torch.Tensor, n_future: int) -> torch.Tensor:
        from types import SimpleNamespace
        self.layers = SimpleNamespace(alpha=self.alpha)
        return self.future[:, :n_future]


def test_compare_objects_scores_the_truth_perfectly_and_an_empty_mask_as_zero() -> None:
    from motionseg.evaluate import _objects_at, compare_objects
    batch = data.make_sequences(4, split="train", seed=1000, n_digits=2)
    frames = torch.from_numpy(batch["frames"])
    true_alpha, _ = _objects_at(batch, 9)
    scores = compare_objects({"truth": _Told(frames[:, 10:], true_alpha),
                              "empty": _Told(torch.zeros_like(frames[:, 10:]), torch.zeros_like(true_alpha))},
                             n=4, n_digits=2, batch_size=4)
    assert scores["truth"]["mse"] == 0 and scores["truth"]["iou"] == pytest.approx(1.0)
    assert scores["empty"]["iou"] == 0
    assert scores["empty"]["mse"] == pytest.approx(float((frames[:, 10:] ** 2).mean()), rel=1e-5)
