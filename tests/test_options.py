"""The options every model records in its checkpoint: one base class, one set of messages."""
import pytest

from motionseg import cycle, learnable, zero_param, zero_param_plus
from motionseg.cycle_nets import CycleNets
from motionseg.learnable import LearnableModel, LearnableOptions
from motionseg.zero_param import ZeroParamModel

MODELS = [(zero_param.ZeroParamModel, zero_param.Options), (learnable.LearnableModel, LearnableOptions),
          (cycle.CycleModel, cycle.Options), (zero_param_plus.ZeroParamPlus, zero_param_plus.PlusOptions)]


@pytest.mark.parametrize("model, options", MODELS)
def test_options_round_trip_through_plain_values(model, options) -> None:
    built = model(options().to_dict())
    assert type(built.options) is options
    assert built.options == options()


def test_a_model_refuses_another_models_options() -> None:
    # a subclass's options in the base model (and the reverse) would drop or invent readings
    with pytest.raises(ValueError, match="ZeroParamModel takes Options, got LearnableOptions"):
        ZeroParamModel(LearnableOptions())
    with pytest.raises(ValueError, match="LearnableModel takes LearnableOptions, got Options"):
        LearnableModel(zero_param.Options())
    with pytest.raises(ValueError, match="CycleNets takes Options, got PlusOptions"):
        CycleNets(zero_param_plus.PlusOptions())


def test_bad_option_values_name_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"option rows='x' is not allowed: choose one of"):
        zero_param.Options(rows="x")
    with pytest.raises(ValueError, match="option dog must be True or False, got 1"):
        zero_param.Options(dog=1)
    with pytest.raises(ValueError, match=r"unknown options \['speed'\] for LearnableOptions"):
        LearnableOptions.from_dict({"speed": 1})
    with pytest.raises(ValueError, match=r"unknown nets \['modelX'\]: allowed are"):
        LearnableModel().without("modelX")
