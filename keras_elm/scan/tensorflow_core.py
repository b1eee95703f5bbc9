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

# The hidden activations of `memory_scan` (see `supports`).
SUPPORTED_ACTIVATIONS = tuple(ACTIVATIONS)


def supports(activation, **options):
    """Whether `memory_scan` runs this recurrence (as Keras's `cudnn_ok`).

    Args:
        activation: name of the MLP's hidden activation.
        **options: the options `memory_scan` would get; this core ignores
            them, so they never make a recurrence unsupported.

    Returns:
        True if `activation` is in `SUPPORTED_ACTIVATIONS`.

    Example:

    >>> supports(activation="relu")
    True
    >>> supports(activation="hard_sigmoid")
    False
    """
    return activation in SUPPORTED_ACTIVATIONS


def time_scan(step, initial, sequences):
    """`tf.while_loop` over the leading (time) axis of `sequences`.

    Returns the stacked per-step outputs of `step(carry, xs) -> carry`. The
    loop has a fixed trip count and a sized `TensorArray`, which XLA
    (`jit_compile=True`) requires and `tf.scan` does not provide.
    """
    steps = tf.shape(tf.nest.flatten(sequences)[0])[0]
    outputs = tf.TensorArray(
        initial.dtype, size=steps, element_shape=initial.shape
    )

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
    **options,
):
    """Runs the memory recurrence over `drive` `(B, T, H)`; returns `(B, T, d)`.

    The forward loop and a hand-written backward pass through time are each
    one `tf.function(jit_compile=True)`, joined by `tf.custom_gradient`: XLA
    compiles the recurrence also when the Keras model runs without XLA (the
    default on CPU), and TensorFlow's own while-loop gradient, which cannot
    cross an XLA boundary and is slow in graph mode, is not used. Weight
    gradients of the MLP and the update are summed step by step inside the
    reverse loop; see `_backward`.

    Args:
        drive: first-layer pre-activation without the memory term.
        memory0: initial memory `(B, d)`.
        recurrent_kernel: `(d, H)` first-layer rows reading `κ_m ⊙ m`, with
            κ_m folded in.
        hidden_kernels: kernels `(H, H)` of the further hidden layers.
        hidden_biases: their biases `(H,)`.
        output_kernel: `(H, d)` last MLP layer.
        output_bias: `(d,)`.
        kappa_m: `(d,)` memory decay.
        gain: `(d,)` gain of the update.
        activation: name of the hidden activation, one of
            `SUPPORTED_ACTIVATIONS`.
        mask: optional bool `(B, T)`; masked steps keep the memory.
        **options: the options of other cores (JAX's `unroll` and
            `remat_chunk`); this core has none and ignores them.

    Returns:
        The memory after every step, `(B, T, d)`.

    Example:

    >>> b, t, d, h = 2, 5, 3, 4
    >>> out = memory_scan(
    ...     tf.ones((b, t, h)), tf.zeros((b, d)), tf.ones((d, h)),
    ...     [], [], tf.ones((h, d)), tf.zeros(d),
    ...     tf.fill((d,), 0.9), tf.fill((d,), 0.1), "relu")
    >>> tuple(out.shape)
    (2, 5, 3)
    """
    del options  # None apply here (see `supports`).
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
    def scan(
        drive,
        memory0,
        recurrent_kernel,
        output_kernel,
        output_bias,
        kappa_m,
        gain,
        *hidden,
    ):
        (
            drive,
            memory0,
            recurrent_kernel,
            output_kernel,
            output_bias,
            kappa_m,
            gain,
            *hidden,
        ) = _stop(
            drive,
            memory0,
            recurrent_kernel,
            output_kernel,
            output_bias,
            kappa_m,
            gain,
            *hidden,
        )
        kernels, biases = list(hidden[:num_hidden]), list(hidden[num_hidden:])
        memory, saved = forward(
            drive,
            memory0,
            recurrent_kernel,
            kernels,
            biases,
            output_kernel,
            output_bias,
            kappa_m,
            gain,
            keep,
        )

        def grad(d_memory):
            return backward(
                tf.stop_gradient(d_memory),
                saved,
                memory0,
                recurrent_kernel,
                kernels,
                output_kernel,
                kappa_m,
                gain,
                keep,
            )

        return tf.transpose(memory, (1, 0, 2)), grad

    return scan(
        drive,
        memory0,
        recurrent_kernel,
        output_kernel,
        output_bias,
        kappa_m,
        gain,
        *hidden_kernels,
        *hidden_biases,
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


def _forward(
    act,
    drive,
    memory0,
    recurrent_kernel,
    kernels,
    biases,
    output_kernel,
    output_bias,
    kappa_m,
    gain,
    keep,
):
    """Time-major forward pass; saves what the backward pass needs.

    Saved per step: each hidden layer's pre-activation `z` (the backward
    pass recomputes `act(z)` step by step), `tanh` and the memory; `keep`
    is None when no step is masked.
    """
    steps = tf.shape(drive)[1]
    xs_drive = tf.transpose(drive, (1, 0, 2))
    layers = len(kernels) + 1
    arrays = [
        tf.TensorArray(drive.dtype, size=steps) for _ in range(layers + 2)
    ]

    def body(t, memory, arrays):
        z = xs_drive[t] + tf.matmul(memory, recurrent_kernel)
        a = act(z)
        new_arrays = [arrays[0].write(t, z)]
        for i, (kernel, bias) in enumerate(zip(kernels, biases)):
            z = tf.matmul(a, kernel) + bias
            a = act(z)
            new_arrays.append(arrays[1 + i].write(t, z))
        th = tf.tanh(
            SCALED_TANH_SLOPE * (tf.matmul(a, output_kernel) + output_bias)
        )
        new = kappa_m * memory + gain * (SCALED_TANH_GAIN * th)
        if keep is not None:
            # A select: a blend with weight 0 would let inf or NaN through.
            new = tf.where(keep[t] > 0, new, memory)
        memory = new
        new_arrays += [arrays[-2].write(t, th), arrays[-1].write(t, memory)]
        return t + 1, memory, new_arrays

    _, _, arrays = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), memory0, arrays),
        maximum_iterations=steps,
    )
    stacked = [array.stack() for array in arrays]
    return stacked[-1], stacked


def _backward(
    act,
    act_derivative,
    d_memory,
    saved,
    memory0,
    recurrent_kernel,
    kernels,
    output_kernel,
    kappa_m,
    gain,
    keep,
):
    """Hand-written backward pass through time of `_forward`.

    Memory, not speed, sets its shape. The reverse loop recomputes each
    layer's `act(z)` and its derivative at its own step and adds the step's
    share to the gradients of the MLP's kernels and biases, `kappa_m` and
    `gain` as it goes; over all steps it keeps only the first layer's `dz`
    (the drive's gradient). Building the activations, their derivatives,
    `d_out` and `d_new` over all steps first, for large matmuls over the
    `T * B` rows after the loop, took about 12.5 KiB per sample and token
    (11 GB at the default ListOps batch, 384 x 2,000 tokens; issue 23). The
    recurrent kernel's gradient is still one product after the loop: its
    inputs, the memory and the first layer's `dz`, are kept anyway.
    """
    *zs, th, memory = saved
    d_memory = tf.transpose(d_memory, (1, 0, 2))
    steps = tf.shape(d_memory)[0]
    # The gain folded in here, once, not at each step.
    d_tanh_scale = SCALED_TANH_GAIN * SCALED_TANH_SLOPE * gain
    output_kernel_t = tf.transpose(output_kernel)
    recurrent_kernel_t = tf.transpose(recurrent_kernel)
    kernels_t = [tf.transpose(k) for k in kernels]
    dz_array = tf.TensorArray(d_memory.dtype, size=steps)
    # Running sums: output kernel and bias, kappa_m, gain, hidden kernels,
    # hidden biases.
    sums = (
        tf.zeros_like(output_kernel),
        tf.zeros_like(output_kernel[0]),
        tf.zeros_like(memory0[0]),
        tf.zeros_like(memory0[0]),
        [tf.zeros_like(k) for k in kernels],
        [tf.zeros_like(k[0]) for k in kernels],
    )

    def body(i, carry, dz_array, sums):
        t = steps - 1 - i
        (
            d_output_kernel,
            d_output_bias,
            d_kappa,
            d_gain,
            d_kernels,
            d_biases,
        ) = sums
        d_kernels, d_biases = list(d_kernels), list(d_biases)
        total = d_memory[t] + carry
        d_new = total if keep is None else keep[t] * total
        th_t = th[t]
        d_out = d_new * (d_tanh_scale * (1.0 - th_t * th_t))
        activations = [act(z[t]) for z in zs]
        d_output_kernel += tf.matmul(activations[-1], d_out, transpose_a=True)
        d_output_bias += tf.reduce_sum(d_out, axis=0)
        # The memory before step t: `memory0` at the first step.
        previous = tf.where(t > 0, memory[tf.maximum(t - 1, 0)], memory0)
        d_kappa += tf.reduce_sum(previous * d_new, axis=0)
        d_gain += tf.reduce_sum(SCALED_TANH_GAIN * th_t * d_new, axis=0)
        da = tf.matmul(d_out, output_kernel_t)
        for layer in range(len(zs) - 1, -1, -1):
            dz = da * act_derivative(zs[layer][t], activations[layer])
            if layer:
                d_kernels[layer - 1] += tf.matmul(
                    activations[layer - 1], dz, transpose_a=True
                )
                d_biases[layer - 1] += tf.reduce_sum(dz, axis=0)
                da = tf.matmul(dz, kernels_t[layer - 1])
        carry = kappa_m * d_new + tf.matmul(dz, recurrent_kernel_t)
        if keep is not None:
            carry += (1.0 - keep[t]) * total
        sums = (
            d_output_kernel,
            d_output_bias,
            d_kappa,
            d_gain,
            d_kernels,
            d_biases,
        )
        return i + 1, carry, dz_array.write(t, dz), sums

    _, d_memory0, dz_array, sums = tf.while_loop(
        lambda i, *_: i < steps,
        body,
        (tf.constant(0), tf.zeros_like(memory0), dz_array, sums),
        maximum_iterations=steps,
    )
    d_output_kernel, d_output_bias, d_kappa, d_gain, d_kernels, d_biases = sums
    dz = dz_array.stack()
    d_drive = tf.transpose(dz, (1, 0, 2))
    # A 2-D product over the T * B rows (faster under XLA on CPU than an
    # einsum over (t, b), which first copies a transpose); dynamic sizes, as
    # `reduce_retracing` relaxes the static shapes. The memory before each
    # step is `memory0` then `memory[:-1]`; the two parts are summed
    # separately rather than concatenated (a copy).
    d_recurrent = tf.matmul(
        tf.reshape(memory[:-1], (-1, tf.shape(memory)[-1])),
        tf.reshape(dz[1:], (-1, tf.shape(dz)[-1])),
        transpose_a=True,
    ) + tf.matmul(memory0, dz[0], transpose_a=True)
    return (
        d_drive,
        d_memory0,
        d_recurrent,
        d_output_kernel,
        d_output_bias,
        d_kappa,
        d_gain,
        *d_kernels,
        *d_biases,
    )
