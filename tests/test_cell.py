"""Unit tests of `ELMCell`, `keras_elm.math` and `keras_elm.routing`."""

import copy

import keras
import numpy as np
import pytest
from keras import ops

import keras_elm
from keras_elm import math as elm_math
from keras_elm import routing as elm_routing
from tests.helpers import load_golden
from tests.layer_test_case import normalized_config
from tests.layer_test_case import to_numpy

# --- state size and initial state ---------------------------------------------


@pytest.mark.parametrize(
    "kwargs, before, after",
    [
        # Without num_branches, the trace size follows the input channels.
        (dict(), [4, None], [4, 6]),
        (dict(synapses_per_branch=2, version=2), [4, None], [4, 3]),
        # With num_branches it is known at construction.
        (dict(num_branches=3, synapses_per_branch=2), [4, 6], [4, 6]),
        (
            dict(num_branches=3, synapses_per_branch=2, version=2),
            [4, 3],
            [4, 3],
        ),
        (
            dict(
                num_branches=5,
                synapses_per_branch=3,
                routing="neuronio",
                version=2,
            ),
            [4, 5],
            [4, 5],
        ),
    ],
)
def test_state_size_before_and_after_build(kwargs, before, after):
    cell = keras_elm.ELMCell(4, **kwargs)
    assert cell.state_size == before
    assert cell.output_size == 4
    cell.build((None, 6))
    assert cell.state_size == after


def test_get_initial_state_needs_the_trace_size():
    cell = keras_elm.ELMCell(4)
    with pytest.raises(ValueError, match="build the cell"):
        cell.get_initial_state(batch_size=2)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_get_initial_state(policy):
    keras.config.set_dtype_policy(policy)
    cell = keras_elm.ELMCell(4, num_branches=3, synapses_per_branch=2)
    cell.build((None, 6))
    states = cell.get_initial_state(batch_size=2)
    assert len(states) == 2
    assert [tuple(s.shape) for s in states] == [(2, 4), (2, 6)]
    for state in states:
        assert keras.backend.standardize_dtype(state.dtype) == "float32"
        assert np.all(to_numpy(state) == 0)


def test_cell_keeps_states_float32_under_mixed_precision():
    # With the MLP's last layer zeroed, Δm = 0 and, for a zero input, each
    # state is decayed: m_1 = κ_m m_0, s_1 = κ_s s_0, in float32. 1/3 is not
    # representable in bfloat16, so a state cast to the compute dtype on the
    # way into the cell is off by ~2e-3. (test_layer.py checks float16 too.)
    keras.config.set_dtype_policy("mixed_bfloat16")
    cell = keras_elm.ELMCell(3, memory_tau_max=10.0)
    cell.build((2, 4))
    cell.mlp_kernels[-1].assign(np.zeros(cell.mlp_kernels[-1].shape, "float32"))
    cell.mlp_biases[-1].assign(np.zeros(cell.mlp_biases[-1].shape, "float32"))
    memory0 = np.full((2, 3), 1 / 3, "float32")
    trace0 = np.full((2, 4), 1 / 3, "float32")
    output, (memory, trace) = cell(
        np.zeros((2, 4), "float32"),
        [ops.convert_to_tensor(memory0), ops.convert_to_tensor(trace0)],
    )
    for state in (output, memory, trace):
        assert keras.backend.standardize_dtype(state.dtype) == "float32"
    kappa_m, _ = cell.memory_coefficients()
    np.testing.assert_allclose(
        to_numpy(memory), memory0 * to_numpy(kappa_m), rtol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(trace), trace0 * to_numpy(cell.trace_decay()), rtol=1e-6
    )


def test_cell_config_round_trip():
    cell = keras_elm.ELMCell(
        4,
        num_branches=2,
        synapses_per_branch=3,
        routing=[0, 1, 2, 3, 4, 0],
        version=2,
        mlp_layers=2,
        mlp_units=7,
        mlp_activation="silu",
        lambda_value=2.0,
        delta_t=0.5,
        memory_tau_min=2.0,
        memory_tau_max=30.0,
        learn_memory_tau=True,
        trace_tau=3.0,
        synapse_weight_init=0.2,
        kernel_regularizer="l2",
        seed=4,
    )
    config = cell.get_config()
    revived = keras_elm.ELMCell.from_config(copy.deepcopy(config))
    assert normalized_config(revived.get_config()) == normalized_config(config)
    assert revived.routing == [0, 1, 2, 3, 4, 0]
    assert revived.hidden_units == 7
    assert keras_elm.ELMCell(4).hidden_units == 8


def test_weights_after_build():
    cell = keras_elm.ELMCell(
        4,
        num_branches=3,
        synapses_per_branch=2,
        routing="random",
        routing_seed=0,
        mlp_layers=2,
        mlp_units=5,
    )
    cell.build((None, 7))
    assert tuple(cell.synapse_weight_raw.shape) == (6,)
    assert tuple(cell.routing_indices.shape) == (6,)
    assert tuple(cell.memory_tau_raw.shape) == (4,)
    # The MLP reads [b, κ_m m]: 3 branches + 4 memory units.
    assert [tuple(k.shape) for k in cell.mlp_kernels] == [
        (7, 5),
        (5, 5),
        (5, 4),
    ]
    assert [tuple(b.shape) for b in cell.mlp_biases] == [(5,), (5,), (4,)]
    np.testing.assert_allclose(to_numpy(cell.synapse_weight_raw), 0.5)
    # One τ per branch (version 1: shared by the branch's synapses).
    assert tuple(cell.trace_tau.shape) == (3,)
    np.testing.assert_allclose(to_numpy(cell.trace_tau), 5.0)
    # τ_m starts log-spaced in [memory_tau_min, memory_tau_max].
    np.testing.assert_array_equal(
        to_numpy(cell.memory_tau_raw),
        elm_math.initial_memory_tau_raw(4, 1.0, 1000.0),
    )


# --- keras_elm.math -----------------------------------------------------------


def test_memory_tau_maps_raw_into_its_range():
    raw = np.array([-100.0, -3.0, 0.0, 3.0, 100.0], "float32")
    tau = to_numpy(elm_math.memory_tau(ops.convert_to_tensor(raw), 2.0, 50.0))
    assert np.all(tau >= 2.0) and np.all(tau <= 50.0)
    assert np.all(np.diff(tau) > 0)
    np.testing.assert_allclose(tau[[0, 2, 4]], [2.0, 26.0, 50.0], rtol=1e-6)
    expected = 2.0 + 48.0 / (1.0 + np.exp(-raw.astype("float64")))
    np.testing.assert_allclose(tau, expected, rtol=1e-6)


def test_decay():
    tau = np.array([1.0, 5.0, 1000.0], "float32")
    got = to_numpy(elm_math.decay(ops.convert_to_tensor(tau), 0.5))
    np.testing.assert_allclose(got, np.exp(-0.5 / tau), rtol=1e-6)
    assert got.dtype == np.float32
    # exp(-1/1000) is representable in float32 but not in bfloat16.
    assert to_numpy(elm_math.decay(ops.convert_to_tensor(tau), 1.0))[2] < 1.0


def test_scaled_tanh():
    x = np.array([-10.0, -1.5, -1.0, 0.0, 1.0, 1.5, 10.0], "float32")
    got = to_numpy(elm_math.scaled_tanh(ops.convert_to_tensor(x)))
    np.testing.assert_allclose(got, 1.7159 * np.tanh(2.0 / 3.0 * x), rtol=1e-6)
    assert got[3] == 0.0
    # LeCun's choice of constants: f(±1) = ±1 and |f| < 1.7159.
    np.testing.assert_allclose(got[[2, 4]], [-1.0, 1.0], atol=1e-4)
    np.testing.assert_allclose(got[[5]], [1.7159 * np.tanh(1.0)], rtol=1e-6)
    assert np.all(np.abs(got) <= 1.7159)


@pytest.mark.parametrize("version", [1, 2])
def test_memory_coefficients(version):
    raw = np.array([-2.0, 0.0, 1.0], "float32")
    kappa_m, gain = elm_math.memory_coefficients(
        ops.convert_to_tensor(raw), 1.0, 100.0, 0.5, 3.0, version
    )
    tau = 1.0 + 99.0 / (1.0 + np.exp(-raw.astype("float64")))
    np.testing.assert_allclose(to_numpy(kappa_m), np.exp(-0.5 / tau), rtol=1e-6)
    if version == 1:
        expected_gain = 3.0 * (1.0 - np.exp(-0.5 / tau))
    else:
        expected_gain = 1.0 - np.exp(-0.5 * 3.0 / tau)
    np.testing.assert_allclose(to_numpy(gain), expected_gain, rtol=1e-5)


@pytest.mark.parametrize(
    "units, tau_min, tau_max",
    [(8, 1.0, 1000.0), (5, 2.0, 150.0), (1, 1.0, 10.0)],
)
def test_initial_memory_tau_raw_is_log_spaced(units, tau_min, tau_max):
    raw = elm_math.initial_memory_tau_raw(units, tau_min, tau_max)
    assert raw.dtype == np.float32 and raw.shape == (units,)
    assert np.all(np.isfinite(raw))
    tau = to_numpy(
        elm_math.memory_tau(ops.convert_to_tensor(raw), tau_min, tau_max)
    )
    expected = np.logspace(np.log10(tau_min), np.log10(tau_max), units)
    # The ends are pulled inside by float32 epsilon so that raw is finite.
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(
        tau, expected, rtol=1e-5, atol=2 * eps * (tau_max - tau_min)
    )


# --- keras_elm.routing --------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["pretrained_neuronio_dm15", "v2_neuronio_routing"]
)
def test_neuronio_routing_matches_the_reference(name):
    meta, arrays, _ = load_golden(name)
    config = meta["config"]
    indices, mask = elm_routing.neuronio_routing(
        config["num_input"],
        config["num_branch"],
        config["num_synapse_per_branch"],
    )
    expected_indices = arrays["state/input_to_synapse_indices"]
    expected_mask = arrays["state/valid_indices_mask"]
    assert indices.dtype == np.int32 and mask.dtype == np.float32
    assert indices.shape == expected_indices.shape
    np.testing.assert_array_equal(mask, expected_mask.astype("float32"))
    np.testing.assert_array_equal(indices, expected_indices)
    # Both cases have masked-out synapses (windows past the last channel).
    assert 0 < np.sum(mask == 0) < mask.size
    assert indices.min() >= 0 and indices.max() < config["num_input"]


def test_neuronio_routing_interleaves_and_masks():
    indices, mask = elm_routing.neuronio_routing(6, 2, 4)
    # Interleaved channels [0, 3, 1, 4, 2, 5]; stride ceil(6 / 2) = 3.
    np.testing.assert_array_equal(indices, [0, 3, 1, 4, 4, 2, 5, 5])
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 1, 1, 0])


def test_random_routing_is_reproducible_and_in_range():
    a, mask = elm_routing.random_routing(7, 50, seed=3)
    b, _ = elm_routing.random_routing(7, 50, seed=3)
    c, _ = elm_routing.random_routing(7, 50, seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    assert a.dtype == np.int32 and a.shape == (50,)
    assert a.min() >= 0 and a.max() < 7
    assert len(np.unique(a)) > 1
    np.testing.assert_array_equal(mask, np.ones(50, "float32"))


def test_random_routing_seed_reaches_the_cell():
    cells = []
    for _ in range(2):
        cell = keras_elm.ELMCell(
            3,
            num_branches=4,
            synapses_per_branch=5,
            routing="random",
            routing_seed=11,
        )
        cell.build((None, 9))
        cells.append(to_numpy(cell.routing_indices))
    expected, _ = elm_routing.random_routing(9, 20, seed=11)
    np.testing.assert_array_equal(cells[0], expected)
    np.testing.assert_array_equal(cells[1], expected)


def test_index_routing_reaches_the_cell():
    cell = keras_elm.ELMCell(
        3, num_branches=2, synapses_per_branch=2, routing=np.array([3, 0, 2, 2])
    )
    cell.build((None, 4))
    np.testing.assert_array_equal(to_numpy(cell.routing_indices), [3, 0, 2, 2])
    np.testing.assert_array_equal(to_numpy(cell.routing_mask), [1, 1, 1, 1])
