"""Wrong arguments raise ValueError or TypeError naming the argument."""

import numpy as np
import pytest

import keras_elm
from keras_elm import convert
from keras_elm import routing as elm_routing
from tests.helpers import load_golden
from tests.helpers import to_numpy


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


# --- constructor arguments ----------------------------------------------------


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
    layer = keras_elm.ELM(
        4, num_branches=2, synapses_per_branch=2, routing=[0, 1, 2, 6]
    )
    with pytest.raises(ValueError, match="routing.*out of range"):
        layer.build((2, 5, 6))


def test_negative_routing_index_at_build():
    cell = keras_elm.ELMCell(
        4, num_branches=2, synapses_per_branch=1, routing=[0, -1]
    )
    with pytest.raises(ValueError, match="routing.*out of range"):
        cell.build((None, 3))


@pytest.mark.parametrize(
    "routing", [[0, 1, 2], [0, 1, 2, 3, 4], [[0, 1], [2, 3, 4]], []]
)
def test_routing_of_the_wrong_length(routing):
    with pytest.raises(ValueError, match="routing"):
        keras_elm.ELM(4, num_branches=2, synapses_per_branch=2, routing=routing)


def test_routing_needs_num_branches():
    with pytest.raises(ValueError, match="num_branches"):
        keras_elm.ELM(4, routing="random")


# Not an array of integers is a bad type: TypeError (a scalar such as 3
# raised ValueError before issue 18).
@pytest.mark.parametrize(
    "routing", [[0.0, 1.5], [0.0, 1.0], 3, np.int64(3), 2.0, [True, False]]
)
def test_routing_indices_must_be_integers(routing):
    with pytest.raises(TypeError, match="routing"):
        keras_elm.ELM(4, num_branches=2, synapses_per_branch=1, routing=routing)


def test_make_routing_rejects_non_integer_indices():
    with pytest.raises(TypeError, match="routing"):
        elm_routing.make_routing(np.array([0.0, 1.0]), 3, 2, 1)


def test_unknown_activation():
    with pytest.raises(ValueError, match="mlp_activation"):
        keras_elm.ELM(4, mlp_activation="nonsense")


def test_unknown_routing_string():
    with pytest.raises(ValueError, match="routing"):
        keras_elm.ELM(4, num_branches=2, routing="nonsense")


@pytest.mark.parametrize("version", [0, 3, -1, np.int64(3)])
def test_unknown_version(version):
    with pytest.raises(ValueError, match="version"):
        keras_elm.ELM(4, version=version)


# --- convert.from_reference ---------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    meta, _, state = load_golden("v1_small")
    return meta["config"], state


def test_from_reference_missing_entry(reference):
    config, state = reference
    state = {k: v for k, v in state.items() if k != "mlp.network.2.bias"}
    with pytest.raises(
        ValueError, match="state_dict.*missing.*mlp.network.2.bias"
    ):
        convert.from_reference(config, state)


def test_from_reference_misshaped_entry(reference):
    config, state = reference
    state = {**state, "w_y.weight": state["w_y.weight"].T}
    with pytest.raises(ValueError, match="state_dict.*'w_y.weight'.*shape"):
        convert.from_reference(config, state)


def test_from_reference_unexpected_entry(reference):
    config, state = reference
    state = {**state, "mlp.network.4.weight": np.zeros((3, 3), "float32")}
    with pytest.raises(
        ValueError, match="state_dict.*unexpected.*mlp.network.4"
    ):
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


# --- arguments that would make a broken layer ---------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("synapse_weight_init", 0.0),
        ("synapse_weight_init", -0.5),
        ("synapse_weight_init", float("nan")),
        ("synapse_weight_init", float("inf")),
        ("lambda_value", float("inf")),
        ("lambda_value", float("nan")),
        ("memory_tau_max", float("inf")),
        ("delta_t", float("inf")),
        ("trace_tau", float("nan")),
    ],
)
def test_non_finite_or_non_positive_numbers(name, value):
    with pytest.raises(
        ValueError, match=f"`{name}` must be a finite number > 0"
    ):
        keras_elm.ELM(4, **{name: value})


@pytest.mark.parametrize(
    "value, error",
    [(-5, ValueError), ("1", TypeError), (1.5, TypeError), (True, TypeError)],
)
def test_routing_seed_is_checked_at_construction(value, error):
    with pytest.raises(error, match="routing_seed"):
        keras_elm.ELM(4, num_branches=2, routing="random", routing_seed=value)


@pytest.mark.parametrize("value", ["3", 2.0, True])
def test_seed_must_be_an_integer(value):
    with pytest.raises(TypeError, match="`seed`"):
        keras_elm.ELM(4, seed=value)


# A bad type raises TypeError (ValueError before issue 18), a bad string
# ValueError: `1 in ("auto", True, False)` holds in Python.
@pytest.mark.parametrize(
    "value, error",
    [
        (1, TypeError),
        (0, TypeError),
        (None, TypeError),
        (1.0, TypeError),
        (np.int64(1), TypeError),
        ("yes", ValueError),
        ("Auto", ValueError),
        ("", ValueError),
    ],
)
def test_use_fast_path_is_checked_by_type(value, error):
    with pytest.raises(error, match="use_fast_path"):
        keras_elm.ELM(4, use_fast_path=value)


def test_use_fast_path_accepts_numpy_booleans():
    layer = keras_elm.ELM(4, use_fast_path=np.True_)
    assert layer.use_fast_path is True
    assert keras_elm.ELM.from_config(layer.get_config()).use_fast_path is True


# A version that is not an integer is a bad type: TypeError (ValueError
# before issue 18), for the layer and for `convert.layer_arguments`.
@pytest.mark.parametrize(
    "version", [True, False, np.True_, 1.0, 2.5, None, "1", [1]]
)
def test_version_is_checked_by_type(version):
    with pytest.raises(TypeError, match="version"):
        keras_elm.ELM(4, version=version)
    with pytest.raises(TypeError, match="version"):
        convert.layer_arguments({"num_input": 3, "num_output": 1}, version)


@pytest.mark.parametrize("version", [0, 3])
def test_reference_version_out_of_range(version):
    with pytest.raises(ValueError, match="version"):
        convert.layer_arguments({"num_input": 3, "num_output": 1}, version)


def test_numpy_integer_version_is_stored_as_int():
    layer = keras_elm.ELM(4, version=np.int64(2))
    assert layer.version == 2 and type(layer.version) is int


@pytest.mark.parametrize("num_memory", [15.0, True, "15", None])
def test_pretrained_memory_size_of_the_wrong_type(num_memory):
    with pytest.raises(TypeError, match="num_memory"):
        keras_elm.pretrained.neuronio_neuron(num_memory=num_memory)


# --- call arguments -----------------------------------------------------------


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
def test_stateful_layer_called_with_another_batch_size(use_fast_path):
    layer = keras_elm.ELM(4, stateful=True, use_fast_path=use_fast_path)
    layer(_x(6, batch=2))
    with pytest.raises(
        ValueError,
        match="stateful.*batch size.*Expected batch "
        "size: 2. Received batch size: 3",
    ):
        layer(_x(6, batch=3))


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
@pytest.mark.parametrize(
    "memory_shape, trace_shape, culprit",
    [
        ((1, 4), (2, 6), "memory"),
        ((2, 4), (1, 6), "trace"),
        ((2, 5), (2, 6), "memory"),
        ((2, 4), (2, 3), "trace"),
        ((4,), (2, 6), "memory"),
        ((2, 4), (2, 6, 1), "trace"),
    ],
    ids=[
        "memory_batch1",
        "trace_batch1",
        "memory_width",
        "trace_width",
        "memory_rank1",
        "trace_rank3",
    ],
)
def test_misshaped_initial_state(
    use_fast_path, memory_shape, trace_shape, culprit
):
    layer = keras_elm.ELM(4, use_fast_path=use_fast_path)
    state = [
        np.zeros(memory_shape, "float32"),
        np.zeros(trace_shape, "float32"),
    ]
    with pytest.raises(
        ValueError,
        match=rf"`initial_state`.*\[\(2, 4\), \(2, 6\)\].*"
        rf"the {culprit} does not fit",
    ):
        layer(_x(6, batch=2), initial_state=state)


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
def test_mask_of_the_wrong_length(use_fast_path):
    layer = keras_elm.ELM(4, use_fast_path=use_fast_path)
    with pytest.raises(
        ValueError,
        match=r"`mask`.*\(2, 5\).*Received mask "
        r"shape \(2, 4\)",
    ):
        layer(_x(6, batch=2, steps=5), mask=np.ones((2, 4), bool))


# --- routing indices in a reference state_dict --------------------------------


@pytest.fixture(scope="module")
def routed_reference():
    meta, _, state = load_golden("v2_neuronio_routing")
    return meta["config"], state


@pytest.mark.parametrize(
    "change, error, message",
    [
        (
            lambda i: np.where(np.arange(i.size) == 3, 10**4, i),
            ValueError,
            "out of range",
        ),
        (
            lambda i: np.where(np.arange(i.size) == 3, -1, i),
            ValueError,
            "out of range",
        ),
        (
            lambda i: i.astype("float64") + (np.arange(i.size) == 3) * 0.5,
            ValueError,
            "integer",
        ),
        (lambda i: i.astype("float64") * np.nan, ValueError, "integer"),
        (lambda i: i.astype(str), TypeError, "integer"),
    ],
    ids=["too_large", "negative", "fractional", "nan", "strings"],
)
def test_from_reference_checks_routing_indices(
    routed_reference, change, error, message
):
    config, state = routed_reference
    indices = state["input_to_synapse_indices"]
    state = {**state, "input_to_synapse_indices": change(indices)}
    with pytest.raises(error, match=f"input_to_synapse_indices.*{message}"):
        convert.from_reference(config, state, version=2)


def test_from_reference_accepts_integral_float_indices(routed_reference):
    config, state = routed_reference
    indices = state["input_to_synapse_indices"]
    model = convert.from_reference(
        config,
        {**state, "input_to_synapse_indices": indices.astype("float32")},
        version=2,
    )
    np.testing.assert_array_equal(
        to_numpy(model.layers[-1].cell.routing_indices), indices
    )


def test_from_reference_checks_the_routing_mask(routed_reference):
    config, state = routed_reference
    mask = state["valid_indices_mask"].astype("float32") * 0.5
    with pytest.raises(ValueError, match="valid_indices_mask.*0/1"):
        convert.from_reference(
            config, {**state, "valid_indices_mask": mask}, version=2
        )
