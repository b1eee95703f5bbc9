"""Backend-agnostic helpers shared by the tests."""

import json
import os

import keras
import numpy as np

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
GOLDEN_CASES = (
    "v1_small",
    "v1_branch",
    "v2_small",
    "v2_neuronio_routing",
    "pretrained_neuronio_dm15",
)


def load_golden(name):
    """A golden case: `(meta, arrays, state_dict)`."""
    with open(os.path.join(DATA_DIR, f"{name}.json")) as f:
        meta = json.load(f)
    with np.load(os.path.join(DATA_DIR, f"{name}.npz")) as data:
        arrays = {k: data[k] for k in data.files}
    state = {
        k[len("state/") :]: v
        for k, v in arrays.items()
        if k.startswith("state/")
    }
    return meta, arrays, state


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def value_and_grads(model, x, r):
    """Output, d sum(y*r)/d trainable weights, and d sum(y*r)/d x.

    Returns:
        `(y, weight_grads, grad_x)`, `weight_grads` aligned with
        `model.trainable_weights`, all NumPy.
    """
    backend = keras.backend.backend()
    x = np.asarray(x, "float32")
    r = np.asarray(r, "float32")
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def loss_fn(trainable, inputs):
            y, _ = model.stateless_call(trainable, frozen, inputs)
            return jnp.sum(y * r), y

        (_, y), (g_w, g_x) = jax.jit(
            jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        )(trainable, jnp.asarray(x))
    elif backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = model(inputs)
            loss = tf.reduce_sum(y * r)
        g = tape.gradient(loss, model.trainable_variables + [inputs])
        g_w, g_x = g[:-1], g[-1]
    elif backend == "torch":
        import torch

        # On Keras's device (the GPU where there is one).
        inputs = keras.ops.convert_to_tensor(x).requires_grad_(True)
        y = model(inputs)
        loss = torch.sum(y * keras.ops.convert_to_tensor(r))
        params = [v.value for v in model.trainable_variables]
        g = torch.autograd.grad(loss, params + [inputs], allow_unused=True)
        g_w, g_x = g[:-1], g[-1]
    else:
        raise NotImplementedError(backend)
    g_w = [
        np.zeros(v.shape, "float32") if g is None else to_numpy(g)
        for v, g in zip(model.trainable_variables, g_w)
    ]
    return to_numpy(y), g_w, to_numpy(g_x)


def assert_close(actual, expected, rtol, name=""):
    """Asserts agreement within `rtol` times the largest magnitude."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= rtol * scale, (
        f"{name}: max error {err:.3g} > {rtol:g} x {scale:.3g}"
    )


def outputs_and_gradients(model, inputs, r, wrt):
    """A model's output and the gradients of `sum(y * r)`.

    Args:
        model: a `keras.Model` with one output.
        inputs: list of NumPy arrays, the model's inputs.
        r: NumPy array shaped like the output.
        wrt: indices of the (float) inputs to differentiate as well.

    Returns:
        `(y, weight_grads, input_grads)` as NumPy: `weight_grads` aligned
        with `model.trainable_variables` (zeros where a weight is unused),
        `input_grads` aligned with `wrt`.
    """
    backend = keras.backend.backend()
    r = np.asarray(r, "float32")
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]
        arrays = [jnp.asarray(x) for x in inputs]

        def loss_fn(trainable, chosen):
            args = list(arrays)
            for i, x in zip(wrt, chosen):
                args[i] = x
            y, _ = model.stateless_call(trainable, frozen, args)
            return jnp.sum(y * r), y

        (_, y), (g_w, g_in) = jax.jit(
            jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        )(trainable, [arrays[i] for i in wrt])
    elif backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            for i in wrt:
                tape.watch(tensors[i])
            y = model(tensors)
            loss = tf.reduce_sum(y * r)
        g = tape.gradient(
            loss, model.trainable_variables + [tensors[i] for i in wrt]
        )
        g_w, g_in = g[: len(g) - len(wrt)], g[len(g) - len(wrt) :]
    elif backend == "torch":
        import torch

        tensors = [keras.ops.convert_to_tensor(x) for x in inputs]
        for i in wrt:
            tensors[i].requires_grad_(True)
        y = model(tensors)
        loss = torch.sum(y * keras.ops.convert_to_tensor(r))
        params = [v.value for v in model.trainable_variables]
        g = torch.autograd.grad(
            loss, params + [tensors[i] for i in wrt], allow_unused=True
        )
        g_w, g_in = g[: len(g) - len(wrt)], g[len(g) - len(wrt) :]
    else:
        raise NotImplementedError(backend)
    g_w = [
        np.zeros(v.shape, "float32") if g is None else to_numpy(g)
        for v, g in zip(model.trainable_variables, g_w)
    ]
    g_in = [
        np.zeros(np.shape(inputs[i]), "float32") if g is None else to_numpy(g)
        for i, g in zip(wrt, g_in)
    ]
    return to_numpy(y), g_w, g_in


class EpochsSeen(keras.callbacks.Callback):
    """Records the index of every epoch `fit` begins (`seen`)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)
