"""`model.fit` at every batch and sequence length, under `jit_compile=True`,
and export with a dynamic number of steps: both loops train alike."""

import os

import keras
import numpy as np
import pytest

import keras_elm
from tests.helpers import assert_close
from tests.helpers import to_numpy

BACKEND = keras.backend.backend()
FEATURES = 4


def _model(steps, use_fast_path, masking=False, **layer_kwargs):
    inputs = keras.Input((steps, FEATURES))
    x = keras.layers.Masking(0.0)(inputs) if masking else inputs
    x = keras_elm.ELM(
        5,
        use_fast_path=use_fast_path,
        num_branches=2,
        synapses_per_branch=2,
        **layer_kwargs,
    )(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def _pair(steps, masking=False, **layer_kwargs):
    keras.utils.set_random_seed(0)
    generic = _model(steps, False, masking, **layer_kwargs)
    fast = _model(steps, True, masking, **layer_kwargs)
    fast.set_weights(generic.get_weights())
    return generic, fast


def _data(samples, steps, masking=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, steps, FEATURES)).astype("float32")
    if masking and steps > 1:
        x[0, -1] = 0.0  # Padding: a step of zeros, masked by `Masking`.
        x[-1, 0] = 0.0
    return x, rng.standard_normal((samples, 3)).astype("float32")


def _fit_both(generic, fast, x, y, batch_size, jit_compile=False, epochs=1):
    histories = []
    for model, jit in ((generic, False), (fast, jit_compile)):
        model.compile(keras.optimizers.SGD(0.05), "mse", jit_compile=jit)
        history = model.fit(
            x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0
        )
        histories.append(history.history["loss"])
    return histories


@pytest.mark.parametrize(
    "samples, steps, batch_size",
    [(1, 1, 1), (4, 1, 2), (10, 6, 3)],
    ids=["batch1_one_step", "one_step", "last_batch_of_one"],
)
def test_fit_at_every_batch_and_sequence_length(samples, steps, batch_size):
    generic, fast = _pair(steps, masking=True)
    initial = [to_numpy(w) for w in fast.weights]
    x, y = _data(samples, steps, masking=True)
    losses = _fit_both(generic, fast, x, y, batch_size)
    assert np.all(np.isfinite(losses))
    assert_close(losses[1], losses[0], 1e-4, "loss")
    moved = [
        not np.allclose(a, to_numpy(b)) for a, b in zip(initial, fast.weights)
    ]
    assert any(moved)
    for variable, a, b in zip(
        generic.weights, fast.get_weights(), generic.get_weights()
    ):
        assert_close(a, b, 1e-4, variable.path)


def test_jit_compile_trains_like_the_eager_generic_loop():
    """`compile(jit_compile=True)` on every backend: XLA on JAX and
    TensorFlow, `torch.compile` on torch, with masked steps and a readout.

    One batch shape: each new shape recompiles, about a minute on torch.
    (Batches of one sample are `test_fit_at_every_batch_and_sequence_length`.)
    """
    steps = 6
    generic, fast = _pair(steps, masking=True, output_units=2)
    x, y = _data(4, steps, masking=True, seed=1)
    losses = _fit_both(
        generic, fast, x, y, batch_size=4, jit_compile=True, epochs=3
    )
    assert np.all(np.isfinite(losses))
    assert_close(losses[1], losses[0], 1e-4, "loss")
    for variable, a, b in zip(
        generic.weights, fast.get_weights(), generic.get_weights()
    ):
        assert_close(a, b, 1e-4, variable.path)
    if BACKEND != "torch":  # A second torch.compile: 20 s more on CPU.
        assert_close(
            to_numpy(fast.predict(x, batch_size=4, verbose=0)),
            to_numpy(generic.predict(x, batch_size=4, verbose=0)),
            1e-4,
            "predict",
        )


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's export of symbolic shapes")
@pytest.mark.parametrize(
    "layer_kwargs",
    [dict(), dict(remat_chunk_size=3), dict(version=2, return_sequences=True)],
    ids=["default", "remat", "v2_sequences"],
)
def test_jax_export_with_a_dynamic_number_of_steps(tmp_path, layer_kwargs):
    tf = pytest.importorskip("tensorflow")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    x = keras_elm.ELM(5, num_branches=2, synapses_per_branch=2, **layer_kwargs)(
        x
    )
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    path = os.path.join(tmp_path, "exported")
    model.export(path, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(path)
    for steps in (1, 7, 12):
        x, _ = _data(2, steps, masking=True, seed=steps)
        assert_close(
            served.serve(tf.constant(x)).numpy(),
            to_numpy(model(x)),
            1e-5,
            f"{steps} steps",
        )
