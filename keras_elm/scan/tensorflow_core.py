"""The ELM memory recurrence on TensorFlow: `tf.scan`, eager or under XLA."""

import tensorflow as tf

from keras_elm.math import SCALED_TANH_GAIN
from keras_elm.math import SCALED_TANH_SLOPE

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "elu": tf.nn.elu,
    "softplus": tf.nn.softplus,
    "linear": tf.identity,
}


def memory_scan(
    drive,
    memory0,
    recurrent_kernel,
    hidden_kernels,
    hidden_biases,
    output_kernel,
    output_bias,
    kappa_m,
    gain,
    activation,
    mask=None,
    unroll=None,
):
    """Runs the memory recurrence; see `keras_elm.scan.jax_core.memory_scan`.

    The carry and the per-step output are both the memory, so `tf.scan`
    applies directly; it builds a `tf.while_loop`, which runs eagerly, in a
    `tf.function` and under `jit_compile=True`. `unroll=True` with a static
    number of steps unrolls the loop in Python instead.
    """
    if activation not in ACTIVATIONS:
        raise NotImplementedError(
            f"The TensorFlow fast path has no activation {activation!r}."
        )
    act = ACTIVATIONS[activation]
    xs_drive = tf.transpose(drive, (1, 0, 2))
    if mask is None:
        xs_mask = tf.ones(tf.shape(xs_drive)[:2], tf.bool)[..., None]
    else:
        xs_mask = tf.transpose(mask, (1, 0))[..., None]

    def step(memory, xs):
        drive_t, mask_t = xs
        h = act(drive_t + tf.matmul(memory, recurrent_kernel))
        for kernel, bias in zip(hidden_kernels, hidden_biases):
            h = act(tf.matmul(h, kernel) + bias)
        out = tf.matmul(h, output_kernel) + output_bias
        delta = SCALED_TANH_GAIN * tf.tanh(SCALED_TANH_SLOPE * out)
        new = kappa_m * memory + gain * delta
        return tf.where(mask_t, new, memory)

    if unroll is True and drive.shape[1] is not None:
        memory, outputs = memory0, []
        for t in range(drive.shape[1]):
            memory = step(memory, (xs_drive[t], xs_mask[t]))
            outputs.append(memory)
        return tf.stack(outputs, axis=1)
    out = tf.scan(step, (xs_drive, xs_mask), initializer=memory0)
    return tf.transpose(out, (1, 0, 2))
