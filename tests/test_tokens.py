"""`ELM(num_tokens=...)`: integer tokens read as their one-hot vectors.

The token layer must equal an `ELM` fed `one_hot(tokens)` (outputs, final
states and gradients), on both paths, for every layout the cell has.
"""

import keras
import numpy as np
import pytest

import keras_elm
from tests.helpers import assert_close
from tests.helpers import outputs_and_gradients

CONFIGS = {
    "v1": dict(units=6),
    "v1_routing": dict(
        units=5,
        num_branches=3,
        synapses_per_branch=4,
        routing="random",
        routing_seed=1,
    ),
    "v1_branches": dict(units=4, synapses_per_branch=3),
    "v2": dict(
        units=5,
        version=2,
        num_branches=3,
        synapses_per_branch=3,
        routing="random",
        routing_seed=2,
    ),
    # 9 tokens < 30 / 2: one-hot encoded on the fast path, not looked up.
    "v1_one_hot": dict(units=6, mlp_units=30),
    "v2_one_hot": dict(units=5, version=2, mlp_units=40),
}
NUM_TOKENS = 9


def _model(layer, steps, tokens, num_tokens, masked, go_backwards):
    if tokens:
        x = keras.Input((steps,), dtype="int32")
    else:
        x = keras.Input((steps, num_tokens))
    m0 = keras.Input((layer.units,))
    layer.build(x.shape)
    s0 = keras.Input((layer.state_size[1],))
    inputs = [x, m0, s0]
    kwargs = {}
    if masked:
        mask = keras.Input((steps,), dtype="bool")
        inputs.append(mask)
        kwargs["mask"] = mask
    out, m, s = layer(x, initial_state=[m0, s0], **kwargs)
    if layer.return_sequences:
        out = keras.layers.Flatten()(out)
    return keras.Model(inputs, keras.layers.Concatenate()([out, m, s]))


def _pair(
    config,
    steps,
    masked=False,
    go_backwards=False,
    fast=True,
    return_sequences=True,
):
    kwargs = dict(
        CONFIGS[config],
        seed=3,
        return_state=True,
        return_sequences=return_sequences,
        go_backwards=go_backwards,
        output_units=2,
    )
    tokens = keras_elm.ELM(num_tokens=NUM_TOKENS, use_fast_path=fast, **kwargs)
    dense = keras_elm.ELM(use_fast_path=False, **kwargs)
    token_model = _model(tokens, steps, True, NUM_TOKENS, masked, go_backwards)
    dense_model = _model(dense, steps, False, NUM_TOKENS, masked, go_backwards)
    dense_model.set_weights(token_model.get_weights())
    return token_model, dense_model, tokens


def _inputs(layer, batch, steps, masked, seed=0):
    rng = np.random.default_rng(seed)
    # -1 and NUM_TOKENS are out of range: they read as zero vectors.
    tokens = rng.integers(-1, NUM_TOKENS + 1, (batch, steps)).astype("int32")
    one_hot = np.zeros((batch, steps, NUM_TOKENS), "float32")
    for b in range(batch):
        for t in range(steps):
            if 0 <= tokens[b, t] < NUM_TOKENS:
                one_hot[b, t, tokens[b, t]] = 1.0
    m0 = rng.standard_normal((batch, layer.units)).astype("float32")
    s0 = rng.standard_normal((batch, layer.state_size[1])).astype("float32")
    extra = []
    if masked:
        mask = rng.random((batch, steps)) > 0.3
        mask[0, 0] = False  # a leading masked step
        extra = [mask]
    return [tokens, m0, s0] + extra, [one_hot, m0, s0] + extra


SHAPES = [
    # (batch, steps, masked, go_backwards)
    (3, 7, False, False),
    (2, 6, True, False),
    (2, 5, True, True),
    (1, 1, False, False),  # batch 1, one step
]


def _token_cases():
    """A covering design, not the full product of configs, paths and shapes
    (each case costs two compiles on JAX): every (config, path) pair and
    every (path, shape) pair once or more, each config with two shapes,
    and the masked shapes on a token-lookup and a one-hot config alike."""
    cases = []
    for i, config in enumerate(sorted(CONFIGS)):
        for p, fast in enumerate((True, False)):
            shape = SHAPES[(i + 2 * p) % len(SHAPES)]
            path = "fast" if fast else "generic"
            cases.append(
                pytest.param(
                    config,
                    fast,
                    *shape,
                    id=f"{config}-{path}-{shape[0]}x{shape[1]}"
                    + ("-masked" if shape[2] else "")
                    + ("-backwards" if shape[3] else ""),
                )
            )
    return cases


@pytest.mark.parametrize(
    "config, fast, batch, steps, masked, go_backwards", _token_cases()
)
def test_tokens_equal_one_hot_inputs(
    config, fast, batch, steps, masked, go_backwards
):
    token_model, dense_model, layer = _pair(
        config, steps, masked, go_backwards, fast
    )
    assert layer.uses_token_lookup == ("one_hot" not in config)
    token_inputs, dense_inputs = _inputs(layer, batch, steps, masked)
    r = (
        np.random.default_rng(1)
        .standard_normal(token_model.output.shape[1:])
        .astype("float32")
    )
    r = np.broadcast_to(r, (batch, *r.shape))
    y_t, g_t, gin_t = outputs_and_gradients(
        token_model, token_inputs, r, [1, 2]
    )
    y_d, g_d, gin_d = outputs_and_gradients(
        dense_model, dense_inputs, r, [1, 2]
    )
    assert_close(y_t, y_d, 1e-5, "outputs and final states")
    for v, a, b in zip(token_model.trainable_variables, g_t, g_d):
        assert_close(a, b, 1e-4, f"grad {v.path}")
    assert_close(gin_t[0], gin_d[0], 1e-4, "grad m0")
    assert_close(gin_t[1], gin_d[1], 1e-4, "grad trace0")
    assert np.abs(g_t[0]).max() > 0  # gradients do flow


def test_tokens_train_with_fit_and_save(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, NUM_TOKENS, (16, 12)).astype("int32")
    y = (x[:, -1] > 4).astype("int32")
    inputs = keras.Input((12,), dtype="int32")
    layer = keras_elm.ELM(8, output_units=2, num_tokens=NUM_TOKENS, seed=0)
    model = keras.Model(inputs, layer(inputs))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    path = str(tmp_path / "tokens.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[-1].num_tokens == NUM_TOKENS
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_token_errors():
    with pytest.raises(ValueError, match="num_tokens"):
        keras_elm.ELM(4, num_tokens=0)
    with pytest.raises((ValueError, TypeError), match="num_tokens"):
        keras_elm.ELM(4, num_tokens=2.5)
    layer = keras_elm.ELM(4, num_tokens=5)
    with pytest.raises(ValueError, match="ndim=2|rank 2"):
        layer(np.zeros((2, 3, 5), "int32"))
    layer = keras_elm.ELM(4, num_tokens=5)
    with pytest.raises(TypeError, match="integer tokens"):
        layer(np.zeros((2, 3), "float32"))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_mask_zero_masks_padding_and_propagates(fast):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, NUM_TOKENS, (3, 8)).astype("int32")
    tokens[0, 5:] = 0  # end padding
    tokens[1, :2] = 0  # leading padding
    tokens[2, 3] = 0
    kwargs = dict(
        units=5,
        num_tokens=NUM_TOKENS,
        seed=1,
        return_sequences=True,
        use_fast_path=fast,
    )
    padded = keras_elm.ELM(mask_zero=True, **kwargs)
    explicit = keras_elm.ELM(**kwargs)
    y = padded(tokens)
    explicit.build(tokens.shape)
    explicit.set_weights(padded.get_weights())
    expected = explicit(tokens, mask=tokens != 0)
    assert_close(
        keras.ops.convert_to_numpy(y),
        keras.ops.convert_to_numpy(expected),
        1e-6,
        "mask_zero",
    )
    # The memory is carried through the padding at the end.
    y = keras.ops.convert_to_numpy(y)
    np.testing.assert_array_equal(y[0, 5:], np.broadcast_to(y[0, 4], (3, 5)))
    # A passed mask is combined with the padding mask.
    both = padded(tokens, mask=np.arange(8)[None].repeat(3, 0) < 6)
    expected = explicit(tokens, mask=(tokens != 0) & (np.arange(8) < 6))
    assert_close(
        keras.ops.convert_to_numpy(both),
        keras.ops.convert_to_numpy(expected),
        1e-6,
        "combined",
    )
    mask = keras.ops.convert_to_numpy(padded.compute_mask(tokens))
    np.testing.assert_array_equal(mask, tokens != 0)
    config = padded.get_config()
    assert config["mask_zero"] is True and config["num_tokens"] == NUM_TOKENS
    assert keras_elm.ELM.from_config(config).mask_zero


def test_mask_zero_needs_num_tokens():
    with pytest.raises(ValueError, match="mask_zero.*num_tokens"):
        keras_elm.ELM(4, mask_zero=True)


# Beyond int32, below 0 or at num_tokens: each must read as an out-of-range
# token (zeros, not padding), never wrap to a valid id (2**32 + 3 -> 3) or to
# the padding (2**40 -> 0) when it is cast to int32.
WIDE_TOKENS = [2**32 + 3, 2**40, -(2**40), 2**31, 2**31 - 1, NUM_TOKENS, -1]


@pytest.mark.parametrize("mode", ["numpy", "tensor", "model"])
@pytest.mark.parametrize("config", ["v1", "v2_one_hot"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_wide_int64_tokens_do_not_wrap(fast, config, mode):
    if mode != "numpy" and keras.backend.backend() == "jax":
        # Without x64, JAX makes int32 arrays of int64 ones (cutting the
        # high bits) before any layer sees them.
        pytest.skip("JAX has no int64 tensors without jax_enable_x64")
    steps = len(WIDE_TOKENS) + 2
    wide = np.array([[1, *WIDE_TOKENS, 3]], "int64")
    reference = np.array([[1, *[-1] * len(WIDE_TOKENS), 3]], "int32")
    layer = keras_elm.ELM(
        num_tokens=NUM_TOKENS,
        mask_zero=True,
        seed=0,
        return_sequences=True,
        return_state=True,
        use_fast_path=fast,
        **CONFIGS[config],
    )
    expected = [keras.ops.convert_to_numpy(y) for y in layer(reference)]
    if mode == "model":
        inputs = keras.Input((steps,), dtype="int64")
        model = keras.Model(inputs, layer(inputs))
        got = model.predict(wide, verbose=0)
    else:
        x = wide if mode == "numpy" else keras.ops.convert_to_tensor(wide)
        got = [keras.ops.convert_to_numpy(y) for y in layer(x)]
        mask = keras.ops.convert_to_numpy(layer.compute_mask(x)[0])[0]
        np.testing.assert_array_equal(mask, np.ones(steps, bool))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
    # The out-of-range steps read as zeros, not as the token 3 or padding.
    three = np.array([[1, 3, *[-1] * (len(WIDE_TOKENS) - 1), 3]], "int32")
    assert not np.allclose(
        keras.ops.convert_to_numpy(layer(three)[0]), expected[0]
    )
