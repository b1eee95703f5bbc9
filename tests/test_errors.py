"""Wrong arguments raise ValueError or TypeError naming the argument."""

import numpy as np
import pytest

import keras_elm
from keras_elm import convert
from keras_elm import routing as elm_routing
from tests.helpers import load_golden


def _x(features, batch=2, steps=5):
    return np.zeros((batch, steps, features), "float32")


# --- inputs ------------------------------------------------------------------


def test_two_dimensional_input():
    with pytest.raises(ValueError, match="ndim=3|rank 3"):
        keras_elm.ELM(4)(np.zeros((2, 6), "float32"))


def test_four_dimensional_input():
    with pytest.raises(ValueError, match="ndim=3|rank 3"):
        keras_elm.ELM(4)(np.zeros((2, 5, 6, 1), "float32"))


def test_wrong_last_dimension_after_build():
    layer = keras_elm.ELM(4)
    layer.build((2, 5, 6))
    with pytest.raises(ValueError, match=r"axis -1 .*value 6"):
        layer(_x(7))


def test_undefined_last_dimension():
    with pytest.raises(ValueError, match="last dimension"):
        keras_elm.ELMCell(4).build((None, None))


# --- constructor arguments -----------------------------------------------------


@pytest.mark.parametrize("cls", [keras_elm.ELM, keras_elm.ELMCell])
@pytest.mark.parametrize("units", [0, -3])
def test_units_below_one(cls, units):
    with pytest.raises(ValueError, match="units"):
        cls(units)


@pytest.mark.parametrize("cls", [keras_elm.ELM, keras_elm.ELMCell])
@pytest.mark.parametrize("units", [2.5, 4.0, "4", True, None])
def test_units_not_an_integer(cls, units):
    with pytest.raises(TypeError, match="units"):
        cls(units)


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("output_units", 0, ValueError),
        ("output_units", 1.5, TypeError),
        ("num_branches", 0, ValueError),
        ("synapses_per_branch", 0, ValueError),
        ("mlp_layers", 0, ValueError),
        ("mlp_units", -1, ValueError),
        ("lambda_value", 0.0, ValueError),
        ("delta_t", -1.0, ValueError),
        ("trace_tau", 0.0, ValueError),
        ("memory_tau_min", "1", TypeError),
    ],
)
def test_bad_numbers(name, value, error):
    with pytest.raises(error, match=name):
        keras_elm.ELM(4, **{name: value})


@pytest.mark.parametrize("tau_min, tau_max", [(10.0, 10.0), (20.0, 5.0)])
def test_memory_tau_min_not_below_max(tau_min, tau_max):
    with pytest.raises(ValueError, match="memory_tau_min"):
        keras_elm.ELM(4, memory_tau_min=tau_min, memory_tau_max=tau_max)


def test_branches_do_not_match_the_input_without_routing():
    layer = keras_elm.ELM(4, num_branches=2, synapses_per_branch=2)
    with pytest.raises(ValueError, match="num_branches"):
        layer(_x(5))


def test_synapses_per_branch_does_not_divide_the_input():
    layer = keras_elm.ELM(4, synapses_per_branch=2)
    with pytest.raises(ValueError, match="synapses_per_branch"):
        layer(_x(5))


def test_routing_indices_out_of_range_at_build():
    layer = keras_elm.ELM(4, num_branches=2, synapses_per_branch=2,
                          routing=[0, 1, 2, 6])
    with pytest.raises(ValueError, match="routing.*out of range"):
        layer.build((2, 5, 6))


def test_negative_routing_index_at_build():
    cell = keras_elm.ELMCell(4, num_branches=2, synapses_per_branch=1,
                             routing=[0, -1])
    with pytest.raises(ValueError, match="routing.*out of range"):
        cell.build((None, 3))


@pytest.mark.parametrize("routing", [[0, 1, 2], [0, 1, 2, 3, 4], [[0, 1], [2, 3, 4]]])
def test_routing_of_the_wrong_length(routing):
    with pytest.raises(ValueError, match="routing"):
        keras_elm.ELM(4, num_branches=2, synapses_per_branch=2,
                      routing=routing)


def test_routing_needs_num_branches():
    with pytest.raises(ValueError, match="num_branches"):
        keras_elm.ELM(4, routing="random")


def test_routing_indices_must_be_integers():
    with pytest.raises(TypeError, match="routing"):
        keras_elm.ELM(4, num_branches=2, synapses_per_branch=1,
                      routing=[0.0, 1.5])


def test_make_routing_rejects_non_integer_indices():
    with pytest.raises(TypeError, match="routing"):
        elm_routing.make_routing(np.array([0.0, 1.0]), 3, 2, 1)


def test_unknown_activation():
    with pytest.raises(ValueError, match="mlp_activation"):
        keras_elm.ELM(4, mlp_activation="nonsense")


def test_unknown_routing_string():
    with pytest.raises(ValueError, match="routing"):
        keras_elm.ELM(4, num_branches=2, routing="nonsense")


@pytest.mark.parametrize("version", [0, 3, "1"])
def test_unknown_version(version):
    with pytest.raises(ValueError, match="version"):
        keras_elm.ELM(4, version=version)


# --- convert.from_reference ----------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    meta, _, state = load_golden("v1_small")
    return meta["config"], state


def test_from_reference_missing_entry(reference):
    config, state = reference
    state = {k: v for k, v in state.items() if k != "mlp.network.2.bias"}
    with pytest.raises(ValueError, match="state_dict.*missing.*mlp.network.2.bias"):
        convert.from_reference(config, state)


def test_from_reference_misshaped_entry(reference):
    config, state = reference
    state = {**state, "w_y.weight": state["w_y.weight"].T}
    with pytest.raises(ValueError, match="state_dict.*'w_y.weight'.*shape"):
        convert.from_reference(config, state)


def test_from_reference_unexpected_entry(reference):
    config, state = reference
    state = {**state, "mlp.network.4.weight": np.zeros((3, 3), "float32")}
    with pytest.raises(ValueError, match="state_dict.*unexpected.*mlp.network.4"):
        convert.from_reference(config, state)


def test_from_reference_unknown_config_key(reference):
    config, state = reference
    with pytest.raises(ValueError, match="config.*num_memroy"):
        convert.from_reference({**config, "num_memroy": 6}, state)


def test_from_reference_config_without_num_output(reference):
    config, state = reference
    config = {k: v for k, v in config.items() if k != "num_output"}
    with pytest.raises(ValueError, match="num_output"):
        convert.from_reference(config, state)


def test_from_reference_state_dict_not_a_mapping(reference):
    config, state = reference
    with pytest.raises(TypeError, match="state_dict"):
        convert.from_reference(config, list(state.values()))


def test_pretrained_unknown_memory_size():
    with pytest.raises(ValueError, match="num_memory"):
        keras_elm.pretrained.neuronio_neuron(num_memory=4)
