"""`run_layer_test`: the standard checks of a Keras recurrent layer.

In the manner of keras-hub's `TestCase.run_layer_test`: one call checks a
layer's serialization, weight counts, eager and symbolic calls, a short
training run, mixed precision and masking. Everything here is
backend-agnostic and runs on the current `KERAS_BACKEND`.
"""

import copy
import inspect
import json

import keras
import numpy as np
from keras import ops

import keras_elm

# Variables that an `ELM` layer keeps (and uses) in float32 under any policy.
FLOAT32_VARIABLES = (
    "cell.memory_tau_raw",
    "cell.synapse_weight_raw",
    "cell.trace_tau",
)
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
# Loose agreement of a mixed-precision output with the float32 one, relative
# to the float32 output's largest magnitude: the MLP runs in (b)float16.
MIXED_RTOL = {"mixed_float16": 1e-2, "mixed_bfloat16": 5e-2}

# The loops an `ELM` layer can run: its default and, where the layer has a
# fast path (`use_fast_path`), the generic `keras.layers.RNN` loop as well.
if "use_fast_path" in inspect.signature(keras_elm.ELM.__init__).parameters:
    LOOPS = {"default": {}, "generic": {"use_fast_path": False}}
else:
    LOOPS = {"default": {}}


def to_numpy(x):
    """A float tensor as a float32 (or integer) NumPy array, bfloat16 too."""
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        x = ops.cast(x, "float32")
    return ops.convert_to_numpy(x)


def as_list(outputs):
    """A layer's outputs as a flat list (one element without return_state)."""
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


def is_shape(shape):
    return isinstance(shape, (list, tuple)) and all(
        d is None or isinstance(d, (int, np.integer)) for d in shape
    )


def shape_list(shapes):
    """One shape or a list of shapes, as a list of tuples."""
    if is_shape(shapes):
        return [tuple(shapes)]
    return [tuple(s) for s in shapes]


def normalized_config(config):
    """A config as JSON would give it back: tuples become lists."""
    return json.loads(json.dumps(config))


def copy_weights(source, target):
    """Gives `target` (built like `source`) the weights of `source`."""
    target.set_weights(source.get_weights())


def resolve(layer, path):
    obj = layer
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def check_serialization(layer_cls, layer):
    config = layer.get_config()
    json.dumps(config)  # The config must be JSON-serializable.
    revived = layer_cls.from_config(copy.deepcopy(config))
    assert type(revived) is layer_cls
    assert normalized_config(revived.get_config()) == normalized_config(config)

    serialized = keras.saving.serialize_keras_object(layer)
    through_json = json.loads(json.dumps(serialized))
    deserialized = keras.saving.deserialize_keras_object(through_json)
    assert type(deserialized) is layer_cls
    assert normalized_config(deserialized.get_config()) == normalized_config(
        config
    )
    reserialized = keras.saving.serialize_keras_object(deserialized)
    assert normalized_config(reserialized) == normalized_config(serialized)


def check_training(layer_cls, init_kwargs, input_data):
    batch_size = input_data.shape[0]
    layer = layer_cls(**init_kwargs)
    inputs = keras.Input(batch_shape=input_data.shape)
    outputs = as_list(layer(inputs))[0]
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="mse"
    )
    targets = (
        np.random.default_rng(1).normal(size=outputs.shape).astype("float32")
    )
    before = [ops.convert_to_numpy(v) for v in model.trainable_variables]
    assert before, "the layer has no trainable weights to train"
    history = model.fit(
        input_data,
        targets,
        batch_size=batch_size,
        epochs=2,
        shuffle=False,
        verbose=0,
    )
    losses = history.history["loss"]
    assert len(losses) == 2
    assert np.all(np.isfinite(losses)), losses
    for variable, old in zip(model.trainable_variables, before):
        new = ops.convert_to_numpy(variable)
        assert np.all(np.isfinite(new)), variable.path
        assert np.any(new != old), f"{variable.path} did not change in fit()"


def check_mixed_precision(layer_cls, reference, input_data, expected):
    """`reference`: the built float32 layer; `expected`: its outputs."""
    config = {**reference.get_config(), "return_state": True}
    for key in ("name", "dtype"):
        config.pop(key, None)
    for policy in MIXED_POLICIES:
        keras.config.set_dtype_policy(policy)
        try:
            compute_dtype = keras.mixed_precision.dtype_policy().compute_dtype
            layer = layer_cls.from_config(config)
            layer.build(input_data.shape)
            copy_weights(reference, layer)
            output, *states = as_list(layer(input_data))
        finally:
            keras.config.set_dtype_policy("float32")
        assert layer.compute_dtype == compute_dtype
        # The cell's states are float32; its MLP runs in the policy's dtype.
        assert layer.cell.compute_dtype == "float32"
        assert layer.cell.mlp_dtype == compute_dtype
        assert keras.backend.standardize_dtype(output.dtype) == compute_dtype
        output = to_numpy(output)
        assert np.all(np.isfinite(output)), policy
        scale = max(float(np.max(np.abs(expected))), 1e-3)
        error = float(np.max(np.abs(output - expected)))
        assert error <= MIXED_RTOL[policy] * scale, (policy, error, scale)
        assert len(states) == len(layer.state_size) == 2
        for state in states:
            assert keras.backend.standardize_dtype(state.dtype) == "float32"
            assert np.all(np.isfinite(ops.convert_to_numpy(state))), policy
        for path in FLOAT32_VARIABLES:
            variable = resolve(layer, path)
            assert keras.backend.standardize_dtype(variable.dtype) == "float32"
            assert variable._autocast is False, path  # Not cast in call.
        for variable in layer.weights:
            if variable.path.endswith("routing_indices"):
                assert variable.dtype == "int32"
            else:
                assert variable.dtype == "float32", variable.path


def padded(input_data, lengths):
    """Zero-pads sample `i` after `lengths[i]` steps; returns data and mask."""
    steps = input_data.shape[1]
    mask = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
    return np.where(mask[..., None], input_data, 0.0).astype("float32"), mask


def check_masking(layer, input_data, unpadded_outputs):
    """Trailing padding, by an explicit mask and by `keras.layers.Masking`,
    gives the outputs (and final states) of the unpadded sequences.

    Args:
        layer: the built layer.
        input_data: its NumPy input.
        unpadded_outputs: its outputs on `input_data` (from zero states), as
            a list of NumPy arrays.
    """
    batch, steps = input_data.shape[:2]
    assert batch >= 2 and steps >= 3, "the check needs a padded sample"
    assert layer.supports_masking
    # Sample 0 keeps all its steps; the others lose two trailing steps (two
    # lengths only: each new input shape costs a compilation on JAX).
    short = steps - 2
    lengths = [steps] + [short] * (batch - 1)
    x, mask = padded(input_data, lengths)

    def run(fn, *args, **kwargs):
        if layer.stateful:
            layer.reset_state()
        return [to_numpy(o) for o in as_list(fn(*args, **kwargs))]

    inputs = keras.Input(batch_shape=x.shape)
    masking_model = keras.Model(
        inputs, layer(keras.layers.Masking(mask_value=0.0)(inputs))
    )
    results = {
        "mask": run(layer, x, mask=mask),
        "Masking": run(masking_model, x),
    }
    unpadded_runs = {
        steps: unpadded_outputs,
        short: run(layer, input_data[:, :short]),
    }
    close = dict(rtol=1e-5, atol=1e-6)
    zero_output = getattr(layer, "zero_output_for_mask", False)
    for i, length in enumerate(lengths):
        expected, *expected_states = [u[i] for u in unpadded_runs[length]]
        for how, outputs in results.items():
            output, *states = [o[i] for o in outputs]
            assert len(states) == len(expected_states)
            for state, expected_state in zip(states, expected_states):
                np.testing.assert_allclose(
                    state,
                    expected_state,
                    **close,
                    err_msg=f"{how}: final state of sample {i}",
                )
            if not layer.return_sequences:
                if zero_output and length < steps:
                    expected = np.zeros_like(
                        expected
                    )  # The last step is masked.
                np.testing.assert_allclose(
                    output,
                    expected,
                    **close,
                    err_msg=f"{how}: last output of sample {i}",
                )
            elif layer.go_backwards:
                # Processing order: the padded steps come first.
                np.testing.assert_allclose(
                    output[-1],
                    expected[-1],
                    **close,
                    err_msg=f"{how}: last output of sample {i}",
                )
            else:
                np.testing.assert_allclose(
                    output[:length],
                    expected,
                    **close,
                    err_msg=f"{how}: unmasked outputs of sample {i}",
                )
                # Masked steps repeat the last unmasked output, or are zero.
                repeated = np.broadcast_to(
                    0.0 if zero_output else expected[-1],
                    output[length:].shape,
                )
                np.testing.assert_allclose(
                    output[length:],
                    repeated,
                    rtol=1e-6,
                    atol=1e-7,
                    err_msg=f"{how}: masked outputs of sample {i}",
                )


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights,
    supports_masking=True,
    run_training_check=True,
    run_mixed_precision_check=True,
):
    """Runs the standard checks of a recurrent layer.

    Args:
        layer_cls: the layer class, e.g. `keras_elm.ELM`.
        init_kwargs: its constructor arguments.
        input_data: float32 NumPy input `(batch, timesteps, features)`.
        expected_output_shape: the output shape, or a list of shapes (output
            and states) when the layer has `return_state=True`.
        expected_num_trainable_weights: trainable weights after build.
        expected_num_non_trainable_weights: non-trainable weights after build.
        supports_masking: whether to check masking (trailing padding).
        run_training_check: whether to check a short `fit()`.
        run_mixed_precision_check: whether to check the mixed policies.
    """
    input_data = np.asarray(input_data, "float32")
    expected_shapes = shape_list(expected_output_shape)

    # Serialization, before and after build.
    layer = layer_cls(**init_kwargs)
    check_serialization(layer_cls, layer)
    layer.build(input_data.shape)
    assert layer.built
    check_serialization(layer_cls, layer)

    # Weight counts.
    assert len(layer.trainable_weights) == expected_num_trainable_weights, [
        v.path for v in layer.trainable_weights
    ]
    assert (
        len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    ), [v.path for v in layer.non_trainable_weights]
    assert len(layer.weights) == (
        expected_num_trainable_weights + expected_num_non_trainable_weights
    )

    # Eager call.
    eager = as_list(layer(input_data))
    eager_shapes = [tuple(o.shape) for o in eager]
    assert eager_shapes == expected_shapes
    assert shape_list(layer.compute_output_shape(input_data.shape)) == (
        expected_shapes
    )
    for output in eager:
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
        assert np.all(np.isfinite(ops.convert_to_numpy(output)))

    # Symbolic call, with a static batch size (a stateful layer needs one).
    symbolic_layer = layer_cls(**init_kwargs)
    symbolic = as_list(
        symbolic_layer(keras.Input(batch_shape=input_data.shape))
    )
    assert [tuple(o.shape) for o in symbolic] == eager_shapes
    for output in symbolic:
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
    # ... and with a dynamic batch size and number of steps.
    if not init_kwargs.get("stateful", False) and not init_kwargs.get(
        "unroll", False
    ):
        dynamic = as_list(
            layer_cls(**init_kwargs)(keras.Input((None, input_data.shape[-1])))
        )
        for output, shape in zip(dynamic, expected_shapes):
            assert tuple(output.shape)[0] is None
            assert tuple(output.shape)[-1] == shape[-1]

    if run_training_check:
        check_training(layer_cls, init_kwargs, input_data)
    if run_mixed_precision_check:
        check_mixed_precision(layer_cls, layer, input_data, to_numpy(eager[0]))
    if supports_masking:
        check_masking(layer, input_data, [to_numpy(o) for o in eager])
