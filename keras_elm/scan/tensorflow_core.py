"""The ELM recurrences on TensorFlow: `tf.while_loop`, eager or under XLA."""

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


def time_scan(step, initial, sequences):
    """`tf.while_loop` over the leading (time) axis of `sequences`.

    Returns the stacked per-step outputs of `step(carry, xs) -> carry`. The
    loop has a fixed trip count and a sized `TensorArray`, which XLA
    (`jit_compile=True`) requires and `tf.scan` does not provide.
    """
    steps = tf.shape(tf.nest.flatten(sequences)[0])[0]
    outputs = tf.TensorArray(initial.dtype, size=steps, element_shape=initial.shape)

    def body(t, carry, outputs):
        xs = tf.nest.map_structure(lambda s: s[t], sequences)
        carry = step(carry, xs)
        return t + 1, carry, outputs.write(t, carry)

    _, _, outputs = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), initial, outputs),
        maximum_iterations=steps,
    )
    return outputs.stack()


def linear_trace(decays, inputs, initial):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` for batch-major `(B, T, C)` inputs."""

    def step(trace, xs):
        decay_t, input_t = xs
        return decay_t * trace + input_t

    traces = time_scan(
        step,
        initial,
        (tf.transpose(decays, (1, 0, 2)), tf.transpose(inputs, (1, 0, 2))),
    )
    return tf.transpose(traces, (1, 0, 2))


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

    A `tf.while_loop` (`time_scan`) runs eagerly, in a `tf.function` and
    under `jit_compile=True`. `unroll=True` with a static number of steps
    unrolls the loop in Python instead.
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
    out = time_scan(step, memory0, (xs_drive, xs_mask))
    return tf.transpose(out, (1, 0, 2))
