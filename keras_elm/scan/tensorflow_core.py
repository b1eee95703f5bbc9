"""The ELM recurrences on TensorFlow: `tf.while_loop`, eager or under XLA."""

import functools

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


@tf.function(jit_compile=True, reduce_retracing=True)
def _time_major_trace(decays, inputs, initial):
    def step(trace, xs):
        decay_t, input_t = xs
        return decay_t * trace + input_t

    return time_scan(step, initial, (decays, inputs))


def _stop(*tensors):
    return [tf.stop_gradient(t) for t in tensors]


def linear_trace(decays, inputs, initial):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` for batch-major `(B, T, C)` inputs.

    Forward and backward are each an XLA-compiled loop joined by
    `tf.custom_gradient` (TensorFlow's while-loop gradient cannot cross an
    XLA boundary). The backward is the same recurrence run in reverse:
    `G_t = g_t + κ_{t+1} G_{t+1}`, `da_t = G_t`, `dκ_t = G_t b_{t-1}`.
    """

    @tf.custom_gradient
    def trace(decays, inputs, initial):
        # Inputs cut from the tape: otherwise TensorFlow asks the compiled
        # loop for its own gradient intermediates, which XLA cannot export.
        decays, inputs, initial = _stop(decays, inputs, initial)
        decays_tm = tf.transpose(decays, (1, 0, 2))
        traces_tm = _time_major_trace(
            decays_tm, tf.transpose(inputs, (1, 0, 2)), initial
        )

        def grad(d_traces):
            d_traces = tf.stop_gradient(d_traces)
            next_decays = tf.concat(
                [decays_tm[1:], tf.ones_like(decays_tm[:1])], axis=0
            )
            totals = tf.reverse(
                _time_major_trace(
                    tf.reverse(next_decays, [0]),
                    tf.reverse(tf.transpose(d_traces, (1, 0, 2)), [0]),
                    tf.zeros_like(initial),
                ),
                [0],
            )
            previous = tf.concat([initial[None], traces_tm[:-1]], axis=0)
            d_decays = tf.transpose(totals * previous, (1, 0, 2))
            d_inputs = tf.transpose(totals, (1, 0, 2))
            return d_decays, d_inputs, decays_tm[0] * totals[0]

        return tf.transpose(traces_tm, (1, 0, 2)), grad

    return trace(decays, inputs, initial)


ACTIVATION_DERIVATIVES = {
    # d act / d z from the pre-activation z and the activation a = act(z).
    "relu": lambda z, a: tf.cast(z > 0, z.dtype),
    "silu": lambda z, a: tf.sigmoid(z) * (1.0 + z * (1.0 - tf.sigmoid(z))),
    "tanh": lambda z, a: 1.0 - a * a,
    "sigmoid": lambda z, a: a * (1.0 - a),
    "gelu": lambda z, a: (
        0.5 * (1.0 + tf.math.erf(z / 2**0.5))
        + z * tf.exp(-0.5 * z * z) / (2.0 * 3.141592653589793) ** 0.5
    ),
    "elu": lambda z, a: tf.where(z > 0, tf.ones_like(z), a + 1.0),
    "softplus": lambda z, a: tf.sigmoid(z),
    "linear": lambda z, a: tf.ones_like(z),
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
):
    """Runs the memory recurrence; see `keras_elm.scan.jax_core.memory_scan`.

    The forward loop and a hand-written backward pass through time are each
    one `tf.function(jit_compile=True)`, joined by `tf.custom_gradient`: XLA
    compiles the recurrence also when the Keras model runs without XLA (the
    default on CPU), and TensorFlow's own while-loop gradient, which cannot
    cross an XLA boundary and is slow in graph mode, is not used. Weight
    gradients are large matmuls over all steps after the reverse loop.
    """
    if activation not in ACTIVATIONS:
        raise NotImplementedError(
            f"The TensorFlow fast path has no activation {activation!r}."
        )
    # Without a mask the compiled loops skip the keep-or-update select.
    keep = None
    if mask is not None:
        keep = tf.transpose(tf.cast(mask, drive.dtype), (1, 0))[..., None]
    forward, backward = _compiled(activation)
    num_hidden = len(hidden_kernels)

    @tf.custom_gradient
    def scan(drive, memory0, recurrent_kernel, output_kernel, output_bias,
             kappa_m, gain, *hidden):
        (drive, memory0, recurrent_kernel, output_kernel, output_bias,
         kappa_m, gain, *hidden) = _stop(
            drive, memory0, recurrent_kernel, output_kernel, output_bias,
            kappa_m, gain, *hidden)
        kernels, biases = list(hidden[:num_hidden]), list(hidden[num_hidden:])
        memory, saved = forward(
            drive, memory0, recurrent_kernel, kernels, biases, output_kernel,
            output_bias, kappa_m, gain, keep,
        )

        def grad(d_memory):
            return backward(
                tf.stop_gradient(d_memory), saved, memory0, recurrent_kernel, kernels,
                output_kernel, kappa_m, gain, keep,
            )

        return tf.transpose(memory, (1, 0, 2)), grad

    return scan(
        drive, memory0, recurrent_kernel, output_kernel, output_bias,
        kappa_m, gain, *hidden_kernels, *hidden_biases,
    )


_COMPILED = {}


def _compiled(activation):
    if activation not in _COMPILED:
        _COMPILED[activation] = (
            tf.function(
                functools.partial(_forward, ACTIVATIONS[activation]),
                jit_compile=True,
                reduce_retracing=True,
            ),
            tf.function(
                functools.partial(
                    _backward,
                    ACTIVATIONS[activation],
                    ACTIVATION_DERIVATIVES[activation],
                ),
                jit_compile=True,
                reduce_retracing=True,
            ),
        )
    return _COMPILED[activation]


def _forward(act, drive, memory0, recurrent_kernel, kernels, biases,
             output_kernel, output_bias, kappa_m, gain, keep):
    """Time-major forward pass; saves what the backward pass needs.

    Saved per step: each hidden layer's pre-activation `z` (the backward
    pass recomputes `act(z)` in bulk), `tanh` and the memory; `keep` is
    None when no step is masked.
    """
    steps = tf.shape(drive)[1]
    xs_drive = tf.transpose(drive, (1, 0, 2))
    layers = len(kernels) + 1
    arrays = [tf.TensorArray(drive.dtype, size=steps) for _ in range(layers + 2)]

    def body(t, memory, arrays):
        z = xs_drive[t] + tf.matmul(memory, recurrent_kernel)
        a = act(z)
        new_arrays = [arrays[0].write(t, z)]
        for i, (kernel, bias) in enumerate(zip(kernels, biases)):
            z = tf.matmul(a, kernel) + bias
            a = act(z)
            new_arrays.append(arrays[1 + i].write(t, z))
        th = tf.tanh(SCALED_TANH_SLOPE * (tf.matmul(a, output_kernel) + output_bias))
        new = kappa_m * memory + gain * (SCALED_TANH_GAIN * th)
        if keep is not None:
            # A select: a blend with weight 0 would let inf or NaN through.
            new = tf.where(keep[t] > 0, new, memory)
        memory = new
        new_arrays += [arrays[-2].write(t, th), arrays[-1].write(t, memory)]
        return t + 1, memory, new_arrays

    _, _, arrays = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), memory0, arrays),
        maximum_iterations=steps,
    )
    stacked = [array.stack() for array in arrays]
    return stacked[-1], stacked


def _backward(act, act_derivative, d_memory, saved, memory0,
              recurrent_kernel, kernels, output_kernel, kappa_m, gain, keep):
    """Hand-written backward pass through time of `_forward`."""
    *zs, th, memory = saved
    activations = [act(z) for z in zs]
    derivatives = [act_derivative(z, a) for z, a in zip(zs, activations)]
    d_memory = tf.transpose(d_memory, (1, 0, 2))
    steps = tf.shape(d_memory)[0]
    # The gain folded in here, once for all steps, not in the loop.
    d_tanh_out = SCALED_TANH_GAIN * SCALED_TANH_SLOPE * gain * (1.0 - th * th)
    output_kernel_t = tf.transpose(output_kernel)
    recurrent_kernel_t = tf.transpose(recurrent_kernel)
    kernels_t = [tf.transpose(k) for k in kernels]
    d_out_array = tf.TensorArray(d_memory.dtype, size=steps)
    d_new_array = tf.TensorArray(d_memory.dtype, size=steps)
    dz_arrays = [tf.TensorArray(d_memory.dtype, size=steps) for _ in zs]

    def body(i, carry, d_out_array, d_new_array, dz_arrays):
        t = steps - 1 - i
        total = d_memory[t] + carry
        d_new = total if keep is None else keep[t] * total
        d_out = d_new * d_tanh_out[t]
        da = tf.matmul(d_out, output_kernel_t)
        dz_arrays = list(dz_arrays)
        for layer in range(len(zs) - 1, -1, -1):
            dz = da * derivatives[layer][t]
            dz_arrays[layer] = dz_arrays[layer].write(t, dz)
            if layer:
                da = tf.matmul(dz, kernels_t[layer - 1])
        carry = kappa_m * d_new + tf.matmul(dz, recurrent_kernel_t)
        if keep is not None:
            carry += (1.0 - keep[t]) * total
        return (i + 1, carry, d_out_array.write(t, d_out),
                d_new_array.write(t, d_new), dz_arrays)

    _, d_memory0, d_out, d_new, dz_arrays = tf.while_loop(
        lambda i, *_: i < steps,
        body,
        (tf.constant(0), tf.zeros_like(memory0), d_out_array, d_new_array,
         dz_arrays),
        maximum_iterations=steps,
    )
    d_out, d_new = d_out.stack(), d_new.stack()
    dzs = [array.stack() for array in dz_arrays]

    def weight_grad(inputs, grads):
        # A 2-D product over the T * B rows (faster under XLA on CPU than
        # an einsum over (t, b), which first copies a transpose).
        # Dynamic sizes: `reduce_retracing` relaxes the static shapes.
        return tf.matmul(
            tf.reshape(inputs, (-1, tf.shape(inputs)[-1])),
            tf.reshape(grads, (-1, tf.shape(grads)[-1])),
            transpose_a=True,
        )

    d_drive = tf.transpose(dzs[0], (1, 0, 2))
    # The memory before each step is `memory0` then `memory[:-1]`; the two
    # parts are summed separately rather than concatenated (a copy).
    d_recurrent = weight_grad(memory[:-1], dzs[0][1:]) + tf.matmul(
        memory0, dzs[0][0], transpose_a=True
    )
    d_kernels = [weight_grad(a, dz) for a, dz in zip(activations[:-1], dzs[1:])]
    d_biases = [tf.reduce_sum(dz, axis=(0, 1)) for dz in dzs[1:]]
    d_output_kernel = weight_grad(activations[-1], d_out)
    d_output_bias = tf.reduce_sum(d_out, axis=(0, 1))
    d_kappa = tf.reduce_sum(memory[:-1] * d_new[1:], axis=(0, 1)) + tf.reduce_sum(
        memory0 * d_new[0], axis=0
    )
    d_gain = tf.reduce_sum(SCALED_TANH_GAIN * th * d_new, axis=(0, 1))
    return (d_drive, d_memory0, d_recurrent, d_output_kernel, d_output_bias,
            d_kappa, d_gain, *d_kernels, *d_biases)
