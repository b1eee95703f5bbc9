"""Keras-style tests of the `ELM` layer on the current backend.

Shapes are shared between tests on purpose (batch 3, 6 steps, 6 features,
4 memory units): on JAX each new shape of an eager call costs compilations.
`tests/test_fast_path.py` compares the fast path with the generic loop in
depth; here only masking, the equations and float32 states run on both.
"""

import copy
import json

import keras
import numpy as np
import pytest
from keras import ops

import keras_elm
from tests.layer_test_case import LOOPS
from tests.layer_test_case import check_masking
from tests.layer_test_case import copy_weights
from tests.layer_test_case import normalized_config
from tests.layer_test_case import padded
from tests.layer_test_case import run_layer_test
from tests.layer_test_case import to_numpy

BATCH, STEPS, FEATURES, UNITS = 3, 6, 6, 4


@pytest.fixture(autouse=True)
def _seed():
    # Unseeded initializers draw from keras' global seed: same weights on
    # every run.
    keras.utils.set_random_seed(0)


BRANCHES = dict(num_branches=3, synapses_per_branch=2)


def data(features=FEATURES, batch=BATCH, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, steps, features)).astype("float32")


def assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=""):
    np.testing.assert_allclose(
        to_numpy(actual),
        to_numpy(expected),
        rtol=rtol,
        atol=atol,
        err_msg=err_msg,
    )


def twin(layer, input_shape, **overrides):
    """A layer from `layer`'s config with `overrides`, and its weights."""
    config = {**layer.get_config(), **overrides}
    other = type(layer).from_config(config)
    other.build(input_shape)
    copy_weights(layer, other)
    return other


def randomize(layer, seed=0):
    """Moves every float weight of a built layer away from its init."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        if variable.dtype != "float32" or variable.path.endswith(
            "routing_mask"
        ):
            continue
        value = ops.convert_to_numpy(variable)
        noise = rng.uniform(0.5, 1.5, size=value.shape).astype("float32")
        variable.assign(value * noise + 0.1 * rng.normal(size=value.shape))


# --- run_layer_test over the layer's configurations -------------------------

# name: (init_kwargs, output shape, trainable, non-trainable, checks), all on
# data(): (3, 6, 6). A compiled `fit()` costs seconds per model on JAX and
# TensorFlow, and on JAX each dtype policy compiles the layer anew, so only
# two configurations train and run the mixed-precision check; all get the
# other checks.
TRAIN = dict(run_training_check=True, run_mixed_precision_check=True)
NO_TRAIN = dict(run_training_check=False, run_mixed_precision_check=False)
CONFIGS = {
    "default": (dict(units=UNITS), (BATCH, UNITS), 5, 2, TRAIN),
    # (mlp_layers=2 doubles the compile time of fit() on JAX: it is checked
    # in "mlp_2_silu_state", without training.)
    "readout_random_routing_learn_tau_v2": (
        dict(
            units=UNITS,
            output_units=2,
            num_branches=4,
            synapses_per_branch=2,
            routing="random",
            routing_seed=1,
            learn_memory_tau=True,
            memory_tau_max=50.0,
            version=2,
            return_sequences=True,
        ),
        (BATCH, STEPS, 2),
        8,
        3,
        TRAIN,
    ),
    "branches": (
        dict(units=UNITS, **BRANCHES, return_sequences=True),
        (BATCH, STEPS, UNITS),
        5,
        2,
        NO_TRAIN,
    ),
    "neuronio_routing_readout": (
        dict(
            units=UNITS,
            output_units=2,
            num_branches=2,
            synapses_per_branch=4,
            routing="neuronio",
        ),
        (BATCH, 2),
        7,
        4,
        NO_TRAIN,
    ),
    "index_routing_version_2_state": (
        dict(
            units=UNITS,
            version=2,
            **BRANCHES,
            routing=[0, 5, 2, 2, 1, 3],
            return_state=True,
            return_sequences=True,
        ),
        [(BATCH, STEPS, UNITS), (BATCH, UNITS), (BATCH, 3)],
        5,
        4,
        NO_TRAIN,
    ),
    "mlp_2_silu_state": (
        dict(
            units=UNITS, mlp_layers=2, mlp_activation="silu", return_state=True
        ),
        [(BATCH, UNITS), (BATCH, UNITS), (BATCH, FEATURES)],
        7,
        2,
        NO_TRAIN,
    ),
    "go_backwards_unroll": (
        dict(
            units=UNITS,
            output_units=2,
            go_backwards=True,
            unroll=True,
            return_sequences=True,
        ),
        (BATCH, STEPS, 2),
        7,
        2,
        NO_TRAIN,
    ),
    "stateful": (
        dict(units=UNITS, stateful=True, return_sequences=True),
        (BATCH, STEPS, UNITS),
        5,
        2,
        NO_TRAIN,
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_run_layer_test(name):
    kwargs, shape, trainable, non_trainable, checks = CONFIGS[name]
    run_layer_test(
        keras_elm.ELM,
        init_kwargs={**kwargs, "seed": 3},
        input_data=data(),
        expected_output_shape=shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        **checks,
    )


def test_learn_memory_tau_makes_memory_tau_trainable():
    for learn in (False, True):
        layer = keras_elm.ELM(UNITS, learn_memory_tau=learn)
        layer.build((BATCH, STEPS, FEATURES))
        trainable = [v.path for v in layer.trainable_weights]
        assert layer.cell.memory_tau_raw.trainable is learn
        assert (layer.cell.memory_tau_raw.path in trainable) is learn
        assert layer.cell.trace_tau.path not in trainable


# --- states ------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, trace_size", [(1, 6), (2, 3)], ids=["v1_synapses", "v2_branches"]
)
def test_return_state_shapes(version, trace_size):
    # 3 branches x 2 synapses reading 5 of the 6 channels: the trace has one
    # value per synapse (version 1) or per branch (version 2).
    kwargs = dict(
        units=UNITS,
        output_units=2,
        version=version,
        **BRANCHES,
        routing=[0, 1, 2, 3, 4, 4],
        return_state=True,
    )
    for return_sequences in (False, True):
        layer = keras_elm.ELM(**kwargs, return_sequences=return_sequences)
        outputs = layer(data())
        assert len(outputs) == 3
        output, memory, trace = outputs
        expected = (BATCH, STEPS, 2) if return_sequences else (BATCH, 2)
        assert tuple(output.shape) == expected
        assert tuple(memory.shape) == (BATCH, UNITS)
        assert tuple(trace.shape) == (BATCH, trace_size)
        assert layer.state_size == [UNITS, trace_size]
        symbolic = keras_elm.ELM(**kwargs, return_sequences=return_sequences)(
            keras.Input((None, FEATURES))
        )
        expected = (None, None, 2) if return_sequences else (None, 2)
        assert [tuple(s.shape) for s in symbolic] == [
            expected,
            (None, UNITS),
            (None, trace_size),
        ]


def test_returned_memory_is_the_last_output_without_readout():
    layer = keras_elm.ELM(UNITS, return_sequences=True, return_state=True)
    output, memory, _ = layer(data())
    assert_allclose(output[:, -1], memory, rtol=0, atol=0)


def test_initial_state_is_used():
    x = data()
    layer = keras_elm.ELM(UNITS, output_units=2, return_state=True, seed=1)
    default = to_numpy(layer(x)[0])
    zeros = [
        np.zeros((BATCH, UNITS), "float32"),
        np.zeros((BATCH, FEATURES), "float32"),
    ]
    assert_allclose(layer(x, initial_state=zeros)[0], default)
    memory = [
        np.ones((BATCH, UNITS), "float32"),
        np.zeros((BATCH, FEATURES), "float32"),
    ]
    changed = to_numpy(layer(x, initial_state=memory)[0])
    assert np.min(np.abs(changed - default)) > 1e-4

    # The final states of the first half start the second half.
    first = layer(x[:, :3])
    second = layer(x[:, 3:], initial_state=list(first[1:]))
    for got, expected in zip(second, layer(x)):
        assert_allclose(got, expected)


def test_initial_state_must_be_two_tensors():
    layer = keras_elm.ELM(UNITS)
    with pytest.raises(ValueError, match="initial_state"):
        layer(data(), initial_state=[np.zeros((BATCH, UNITS), "float32")])


def test_go_backwards_runs_on_the_reversed_sequence():
    x = data()
    forward = keras_elm.ELM(
        UNITS, output_units=2, return_sequences=True, return_state=True
    )
    forward.build(x.shape)
    randomize(forward)
    backward = twin(forward, x.shape, go_backwards=True)
    got = backward(x)
    expected = forward(x[:, ::-1])
    for g, e in zip(got, expected):
        assert_allclose(g, e)
    # Keras' convention, which the above encodes: the output sequence is in
    # processing order, i.e. reversed in time.
    simple = keras.layers.SimpleRNN(2, return_sequences=True)
    simple.build(x.shape)
    simple_back = keras.layers.SimpleRNN(
        2, return_sequences=True, go_backwards=True
    )
    simple_back.build(x.shape)
    copy_weights(simple, simple_back)
    assert_allclose(simple_back(x), simple(x[:, ::-1]))


def test_stateful_carries_state_across_calls():
    x = data()
    full = keras_elm.ELM(UNITS, output_units=2, return_sequences=True, seed=2)
    full.build(x.shape)
    randomize(full)
    layer = twin(full, x.shape, stateful=True)
    assert len(layer.states) == 2
    first = layer(x[:, :3])
    second = layer(x[:, 3:])
    assert_allclose(ops.concatenate([first, second], axis=1), full(x))

    # The state variables hold the final states.
    _, memory, trace = twin(full, x.shape, return_state=True)(x)
    assert_allclose(layer.states[0], memory)
    assert_allclose(layer.states[1], trace)

    layer.reset_state()
    for state in layer.states:
        assert np.all(to_numpy(state) == 0)
    assert_allclose(layer(x[:, :3]), first)


def test_unroll_equals_loop():
    x = data()
    layer = keras_elm.ELM(
        UNITS, output_units=2, return_sequences=True, return_state=True
    )
    layer.build(x.shape)
    randomize(layer)
    unrolled = twin(layer, x.shape, unroll=True)
    for got, expected in zip(unrolled(x), layer(x)):
        assert_allclose(got, expected)


def test_bidirectional():
    x = data()
    layer = keras.layers.Bidirectional(
        keras_elm.ELM(UNITS, output_units=2, return_sequences=True, seed=0)
    )
    y = layer(x)
    assert tuple(y.shape) == (BATCH, STEPS, 4)
    assert isinstance(layer.backward_layer, keras_elm.ELM)
    assert layer.backward_layer.go_backwards

    # Forward half: the layer; backward half: the layer on the reversed
    # sequence, flipped back in time.
    forward = twin(layer.forward_layer, x.shape)
    backward = twin(layer.backward_layer, x.shape, go_backwards=False)
    assert_allclose(y[..., :2], forward(x))
    assert_allclose(y[..., 2:], to_numpy(backward(x[:, ::-1]))[:, ::-1])

    config = layer.get_config()
    revived = keras.layers.Bidirectional.from_config(copy.deepcopy(config))
    assert normalized_config(revived.get_config()) == normalized_config(config)
    revived.build(x.shape)
    copy_weights(layer, revived)
    assert_allclose(revived(x), y)

    serialized = json.loads(
        json.dumps(keras.saving.serialize_keras_object(layer))
    )
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(deserialized.forward_layer, keras_elm.ELM)
    assert normalized_config(deserialized.get_config()) == normalized_config(
        config
    )


def test_plain_rnn_with_elm_cell_equals_elm():
    x = data()
    kwargs = dict(**BRANCHES, version=2)
    layer = keras_elm.ELM(
        UNITS, return_sequences=True, return_state=True, **kwargs
    )
    layer.build(x.shape)
    randomize(layer)
    rnn = keras.layers.RNN(
        keras_elm.ELMCell(UNITS, **kwargs),
        return_sequences=True,
        return_state=True,
    )
    rnn.build(x.shape)
    copy_weights(layer, rnn)
    outputs = rnn(x)
    assert len(outputs) == 3
    for got, expected in zip(outputs, layer(x)):
        assert_allclose(got, expected)

    unbuilt = keras.layers.RNN(keras_elm.ELMCell(UNITS, **kwargs))
    config = unbuilt.get_config()
    revived = keras.layers.RNN.from_config(copy.deepcopy(config))
    assert isinstance(revived.cell, keras_elm.ELMCell)
    assert normalized_config(revived.get_config()) == normalized_config(config)


# --- masking -----------------------------------------------------------------


# keras/src/backend/torch/rnn.py (keras 3.15.1) line 95 calls torch.flip on
# the tuple from torch.unbind when unroll=True, go_backwards=True and a mask
# meet; keras.layers.SimpleRNN fails the same way. Only keras' own loop is
# affected, not ELM's fast path.
TORCH_UNROLL_BACKWARDS_MASK = pytest.mark.xfail(
    keras.backend.backend() == "torch",
    strict=True,
    raises=AttributeError,
    reason="upstream keras torch rnn: unroll + go_backwards + mask",
)


# `run_layer_test` checks masking on the default loop of every
# configuration; these run keras' own loop (the generic one where the layer
# has a fast path), with the final states compared too. On JAX, keras'
# masked scan step repeats `states[0]` as the output of a masked step: this
# holds for ELM (the loop's output is the memory m, the first state), and
# these checks fail if it ever does not.
KERAS_LOOP = "generic" if "generic" in LOOPS else "default"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(output_units=2, return_sequences=True),
        dict(version=2, **BRANCHES, routing="random", routing_seed=0),
        pytest.param(
            dict(go_backwards=True, unroll=True, return_sequences=True),
            marks=TORCH_UNROLL_BACKWARDS_MASK,
        ),
    ],
    ids=["readout_sequences", "v2_routing_last", "backwards_unrolled"],
)
def test_masking_trailing_padding_in_keras_loop(kwargs):
    x = data()
    layer = keras_elm.ELM(
        UNITS, return_state=True, **kwargs, **LOOPS[KERAS_LOOP]
    )
    layer.build(x.shape)
    randomize(layer)
    check_masking(layer, x, [to_numpy(o) for o in layer(x)])


def test_masked_step_keeps_state_and_repeats_output_in_keras_loop():
    # A mask with a hole in the middle: the masked step changes nothing.
    layer = keras_elm.ELM(
        UNITS,
        output_units=2,
        return_sequences=True,
        return_state=True,
        **LOOPS[KERAS_LOOP],
    )
    x = data()
    layer.build(x.shape)
    randomize(layer)
    mask = np.ones((BATCH, STEPS), bool)
    mask[:, 2] = False
    got = layer(x, mask=mask)
    without = [to_numpy(o) for o in layer(np.delete(x, 2, axis=1))]
    expected = np.insert(without[0], 2, without[0][:, 1], axis=1)
    assert_allclose(got[0], expected)
    assert_allclose(got[1], without[1])
    assert_allclose(got[2], without[2])


def test_zero_output_for_mask_without_readout():
    layer = keras_elm.ELM(
        UNITS, return_sequences=True, zero_output_for_mask=True
    )
    x, mask = padded(data(), [STEPS, STEPS - 2, STEPS - 3])
    y = to_numpy(layer(x, mask=mask))
    assert np.all(y[~mask] == 0)
    assert np.all(np.abs(y[mask]) > 0)


def test_zero_output_for_mask_with_readout():
    layer = keras_elm.ELM(
        UNITS, output_units=2, return_sequences=True, zero_output_for_mask=True
    )
    x, mask = padded(data(), [STEPS, STEPS - 2, STEPS - 3])
    y = to_numpy(layer(x, mask=mask))
    assert np.all(y[~mask] == 0)
    assert np.all(np.any(y[mask] != 0, axis=-1))


# --- mixed precision: float32 states ------------------------------------------

# Under a mixed policy the states must stay float32 from step to step. The
# checks below make the MLP's output a constant, Δm = scaled_tanh(0.5), and
# the input a constant 0.5 (both exact in (b)float16), so the states follow a
# float32 recurrence that NumPy repeats; a state rounded to (b)float16 between
# steps is off by ~2e-3 (bfloat16) or ~2e-4 (float16) relative.


def _constant_drive(layer):
    cell = layer.cell
    cell.mlp_kernels[-1].assign(np.zeros(cell.mlp_kernels[-1].shape, "float32"))
    cell.mlp_biases[-1].assign(
        np.full(cell.mlp_biases[-1].shape, 0.5, "float32")
    )


def _float32_recurrence(layer, memory, trace, steps, x_value=0.5):
    cell = layer.cell
    kappa_m, gain = [to_numpy(c) for c in cell.memory_coefficients()]
    kappa_s = to_numpy(cell.trace_decay())
    w_s = np.maximum(to_numpy(cell.synapse_weight_raw), 0)
    delta_m = np.float32(1.7159 * np.tanh(2.0 / 3.0 * 0.5))
    memory, trace = np.float32(memory), np.float32(trace)
    for _ in range(steps):
        memory = kappa_m * memory + gain * delta_m
        trace = kappa_s * trace + w_s * np.float32(x_value)
    return memory, trace


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_states_stay_float32_between_steps(policy, loop):
    keras.config.set_dtype_policy(policy)
    x = np.full((BATCH, STEPS, FEATURES), 0.5, "float32")
    layer = keras_elm.ELM(
        UNITS, return_state=True, memory_tau_max=10.0, **LOOPS[loop]
    )
    layer.build(x.shape)
    _constant_drive(layer)
    _, memory, trace = layer(x)
    expected_memory, expected_trace = _float32_recurrence(
        layer, 0.0, 0.0, STEPS
    )
    assert_allclose(
        memory,
        np.broadcast_to(expected_memory, memory.shape),
        rtol=1e-5,
        atol=0,
    )
    assert_allclose(
        trace, np.broadcast_to(expected_trace, trace.shape), rtol=1e-5, atol=0
    )


def test_explicit_initial_state_is_not_rounded_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = np.full((BATCH, STEPS, FEATURES), 0.5, "float32")
    layer = keras_elm.ELM(UNITS, return_state=True, memory_tau_max=10.0)
    layer.build(x.shape)
    _constant_drive(layer)
    memory0 = np.full((BATCH, UNITS), 1 / 3, "float32")
    trace0 = np.full((BATCH, FEATURES), 1 / 3, "float32")
    _, memory, trace = layer(x, initial_state=[memory0, trace0])
    expected_memory, expected_trace = _float32_recurrence(
        layer, memory0, trace0, STEPS
    )
    assert_allclose(memory, expected_memory, rtol=1e-5, atol=0)
    assert_allclose(trace, expected_trace, rtol=1e-5, atol=0)


def test_stateful_state_is_not_rounded_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = np.full((BATCH, STEPS, FEATURES), 0.5, "float32")
    layer = keras_elm.ELM(
        UNITS, stateful=True, return_state=True, memory_tau_max=10.0
    )
    layer.build(x.shape)
    for state in layer.states:
        assert keras.backend.standardize_dtype(state.dtype) == "float32"
    _constant_drive(layer)
    memory0 = np.full((BATCH, UNITS), 1 / 3, "float32")
    trace0 = np.full((BATCH, FEATURES), 1 / 3, "float32")
    layer.states[0].assign(memory0)
    layer.states[1].assign(trace0)
    _, memory, trace = layer(x)
    expected_memory, expected_trace = _float32_recurrence(
        layer, memory0, trace0, STEPS
    )
    assert_allclose(memory, expected_memory, rtol=1e-5, atol=0)
    assert_allclose(trace, expected_trace, rtol=1e-5, atol=0)


# --- the equations, in NumPy -------------------------------------------------


def numpy_elm(layer, x):
    """The ELM equations (see `ELMCell`'s docstring) in float64 NumPy."""
    cell = layer.cell
    w = {
        v.path.split("/")[-1]: ops.convert_to_numpy(v).astype("float64")
        for v in layer.weights
    }
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    activations = {
        "relu": lambda z: np.maximum(z, 0.0),
        "silu": lambda z: z * sigmoid(z),
    }
    activation = activations[keras.activations.serialize(cell.mlp_activation)]
    dt, lam = cell.delta_t, cell.lambda_value
    branches, per_branch = cell.resolved_num_branches, cell.synapses_per_branch
    # Synaptic weights w_s = relu(raw); τ_m = τ_min + (τ_max - τ_min) σ(raw).
    w_s = np.maximum(w["synapse_weight_raw"], 0.0)
    tau_m = cell.memory_tau_min + (
        cell.memory_tau_max - cell.memory_tau_min
    ) * sigmoid(w["memory_tau_raw"])
    kappa_m = np.exp(-dt / tau_m)
    # trace_tau holds one τ per branch; in version 1 its synapses share it.
    kappa_b = np.exp(-dt / w["trace_tau"])
    if cell.version == 1:
        kappa_trace = np.repeat(kappa_b, per_branch)
        gain = lam * (1.0 - kappa_m)
    else:
        kappa_trace = kappa_b
        gain = 1.0 - np.exp(-dt * lam / tau_m)
    batch, steps, _ = x.shape
    memory = np.zeros((batch, cell.units))
    trace = np.zeros((batch, len(kappa_trace)))
    outputs = []
    for t in range(steps):
        x_t = x[:, t].astype("float64")
        if cell.uses_routing:
            indices = ops.convert_to_numpy(cell.routing_indices)
            x_t = x_t[:, indices] * w["routing_mask"]
        synaptic = w_s * x_t
        if cell.version == 1:
            trace = kappa_trace * trace + synaptic
            b = trace.reshape(batch, branches, per_branch).sum(-1)
        else:
            trace = kappa_trace * trace + synaptic.reshape(
                batch, branches, per_branch
            ).sum(-1)
            b = trace
        hidden = np.concatenate([b, kappa_m * memory], axis=-1)
        for i in range(cell.mlp_layers):
            hidden = activation(
                hidden @ w[f"mlp_kernel_{i}"] + w[f"mlp_bias_{i}"]
            )
        last = cell.mlp_layers
        z = hidden @ w[f"mlp_kernel_{last}"] + w[f"mlp_bias_{last}"]
        delta_m = 1.7159 * np.tanh(2.0 / 3.0 * z)
        memory = kappa_m * memory + gain * delta_m
        y = memory
        if layer.output_units is not None:
            y = memory @ w["output_kernel"] + w["output_bias"]
        outputs.append(y)
    return np.stack(outputs, axis=1), memory, trace


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(version=1),
        dict(version=2, **BRANCHES),
        dict(
            version=1,
            output_units=2,
            **BRANCHES,
            routing=[0, 5, 1, 1, 2, 0],
            mlp_layers=2,
            mlp_units=5,
            mlp_activation="silu",
        ),
        dict(
            version=2,
            output_units=2,
            num_branches=2,
            synapses_per_branch=4,
            routing="neuronio",
            learn_memory_tau=True,
        ),
    ],
    ids=["v1", "v2_branches", "v1_routing_mlp2", "v2_neuronio"],
)
def test_matches_numpy_equations(kwargs, loop):
    x = data()
    layer = keras_elm.ELM(
        UNITS,
        **kwargs,
        return_sequences=True,
        return_state=True,
        lambda_value=3.0,
        delta_t=0.5,
        memory_tau_max=20.0,
        trace_tau=3.0,
        **LOOPS[loop],
    )
    layer.build(x.shape)
    randomize(layer)
    # One synapse with w_s = relu(raw) = 0.
    raw = to_numpy(layer.cell.synapse_weight_raw).copy()
    raw[0] = -0.3
    layer.cell.synapse_weight_raw.assign(raw)
    output, memory, trace = layer(x)
    expected_output, expected_memory, expected_trace = numpy_elm(layer, x)
    assert_allclose(output, expected_output, rtol=1e-5, atol=1e-5)
    assert_allclose(memory, expected_memory, rtol=1e-5, atol=1e-5)
    assert_allclose(trace, expected_trace, rtol=1e-5, atol=1e-5)
