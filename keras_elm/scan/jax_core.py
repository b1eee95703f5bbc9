"""The ELM memory recurrence on JAX: `lax.scan`, tuned unroll, remat."""

import functools

import jax
import jax.numpy as jnp

from keras_elm.math import SCALED_TANH_GAIN
from keras_elm.math import SCALED_TANH_SLOPE
from keras_elm.scan.hoist import combine_linear_steps

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "linear": lambda x: x,
}

# The hidden activations of `memory_scan` (see `supports`).
SUPPORTED_ACTIVATIONS = tuple(ACTIVATIONS)

DEFAULT_UNROLL = 4


def supports(activation, **options):
    """Whether `memory_scan` runs this recurrence (as Keras's `cudnn_ok`).

    Args:
        activation: name of the MLP's hidden activation.
        **options: the options `memory_scan` would get (`unroll`,
            `remat_chunk`); every value of them is supported.

    Returns:
        True if `activation` is in `SUPPORTED_ACTIVATIONS`.

    Example:

    >>> supports(activation="relu", remat_chunk=16)
    True
    >>> supports(activation="hard_sigmoid")
    False
    """
    return activation in SUPPORTED_ACTIVATIONS


def is_static(size):
    """Whether a dimension is a number, not a symbol (`jax.export` with
    `Input((None, F))`, e.g. for `model.export(format="tf_saved_model")`)."""
    return isinstance(size, int)


@jax.jit
def linear_trace(decays, inputs, initial):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` for batch-major `(B, T, C)` inputs.

    An associative scan, jitted so that eager calls do not dispatch its
    O(log T) levels op by op. JAX has no associative scan over an axis of
    symbolic size, so a symbolic T runs a sequential `lax.scan` instead.
    """
    if not is_static(inputs.shape[1]):

        def step(trace, xs):
            decay_t, input_t = xs
            trace = decay_t * trace + input_t
            return trace, trace

        _, traces = jax.lax.scan(
            step,
            initial,
            (jnp.swapaxes(decays, 0, 1), jnp.swapaxes(inputs, 0, 1)),
        )
        return jnp.swapaxes(traces, 0, 1)
    cumulative, traces = jax.lax.associative_scan(
        combine_linear_steps, (decays, inputs), axis=1
    )
    return traces + cumulative * initial[:, None, :]


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

    Jitted, with `activation` and the options static.

    Args:
        drive: first-layer pre-activation without the memory term.
        memory0: initial memory `(B, d)`.
        recurrent_kernel: `(d, H)` first-layer rows reading `κ_m ⊙ m`, with
            κ_m folded in.
        hidden_kernels: kernels of the further hidden layers.
        hidden_biases: their biases.
        output_kernel: `(H, d)` last MLP layer.
        output_bias: `(d,)`.
        kappa_m: `(d,)` memory decay.
        gain: `(d,)` gain of the update.
        activation: name of the hidden activation, one of
            `SUPPORTED_ACTIVATIONS`.
        mask: optional bool `(B, T)`; masked steps keep the memory.
        **options: `unroll`, the `lax.scan` unroll factor (True unrolls
            fully; default `DEFAULT_UNROLL`), and `remat_chunk`: if set,
            rematerialise the backward pass in chunks of this many steps,
            so memory grows like `T / chunk + chunk`. Other options (of
            other cores) are ignored.

    Returns:
        The memory after every step, `(B, T, d)`.

    Example:

    >>> b, t, d, h = 2, 5, 3, 4
    >>> out = memory_scan(
    ...     jnp.ones((b, t, h)), jnp.zeros((b, d)), jnp.ones((d, h)),
    ...     [], [], jnp.ones((h, d)), jnp.zeros(d),
    ...     jnp.full((d,), 0.9), jnp.full((d,), 0.1), "relu")
    >>> tuple(out.shape)
    (2, 5, 3)
    """
    return _memory_scan(
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
        mask=mask,
        unroll=options.get("unroll"),
        remat_chunk=options.get("remat_chunk"),
    )


@functools.partial(
    jax.jit, static_argnames=("activation", "unroll", "remat_chunk")
)
def _memory_scan(
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
    remat_chunk=None,
):
    """`memory_scan`, jitted, with its options as arguments."""
    if activation not in ACTIVATIONS:
        raise NotImplementedError(
            f"The JAX fast path has no activation {activation!r}."
        )
    steps = drive.shape[1]
    unroll = DEFAULT_UNROLL if unroll is None else unroll
    if not is_static(steps):
        # A partly unrolled scan compares the symbolic length with the
        # unroll factor, which `jax.export` cannot decide.
        unroll = 1
    xs_drive = jnp.swapaxes(drive, 0, 1)
    if mask is None:
        keep = jnp.ones((steps, drive.shape[0], 1), drive.dtype)
    else:
        keep = jnp.swapaxes(mask, 0, 1)[..., None].astype(drive.dtype)
    weights = (
        recurrent_kernel,
        tuple(hidden_kernels),
        tuple(hidden_biases),
        output_kernel,
        output_bias,
        kappa_m,
        gain,
    )

    def scan(drive_tm, memory, keep_tm):
        return _memory_scan_vjp(
            activation, unroll, drive_tm, memory, *weights, keep_tm
        )

    # (A symbolic T, under `jax.export`, always runs the chunks.)
    if not remat_chunk or (is_static(steps) and remat_chunk >= steps):
        return jnp.swapaxes(scan(xs_drive, memory0, keep), 0, 1)

    # Chunks of the same scan; each chunk's residuals are recomputed in the
    # backward pass instead of stored, so memory grows like T / chunk + chunk.
    chunk = int(remat_chunk)
    num_chunks = -(-steps // chunk)
    pad = num_chunks * chunk - steps
    if pad:
        # Padded steps are masked, so they leave the memory unchanged.
        xs_drive = jnp.pad(xs_drive, ((0, pad), (0, 0), (0, 0)))
        keep = jnp.pad(keep, ((0, pad), (0, 0), (0, 0)))
    xs_drive = xs_drive.reshape((num_chunks, chunk) + xs_drive.shape[1:])
    keep = keep.reshape((num_chunks, chunk) + keep.shape[1:])

    @jax.checkpoint
    def run_chunk(memory, xs):
        out = scan(xs[0], memory, xs[1])
        return out[-1], out

    _, out = jax.lax.scan(run_chunk, memory0, (xs_drive, keep))
    out = out.reshape((num_chunks * chunk,) + out.shape[2:])[:steps]
    return jnp.swapaxes(out, 0, 1)


# The scan without remat has a hand-written backward pass through time
# (`jax.custom_vjp`). Differentiating `lax.scan` directly accumulates every
# weight gradient in the loop carry, two more small matmuls per step; here
# the reverse loop does only the sequential work (two matmuls per step for
# one hidden layer) and each weight gradient is one large matmul over all
# `T * B` rows afterwards. This is about 3x faster than autodiff of the scan
# on CPU. Remat chunks (`jax.checkpoint`) wrap the same function.


def _forward_pass(
    act,
    unroll,
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
    """Time-major forward; returns memory `(T, B, d)` and saved residuals."""

    def step(memory, xs):
        drive_t, keep_t = xs
        z = drive_t + memory @ recurrent_kernel
        zs = [z]
        a = act(z)
        for kernel, bias in zip(kernels, biases):
            z = a @ kernel + bias
            zs.append(z)
            a = act(z)
        th = jnp.tanh(SCALED_TANH_SLOPE * (a @ output_kernel + output_bias))
        new = kappa_m * memory + gain * (SCALED_TANH_GAIN * th)
        new = jnp.where(keep_t > 0, new, memory)
        return new, (new, th, zs)

    _, (memory, th, zs) = jax.lax.scan(
        step, memory0, (drive, keep), unroll=unroll
    )
    return memory, th, zs


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _memory_scan_vjp(activation, unroll, *args):
    return _memory_scan_fwd(activation, unroll, *args)[0]


def _memory_scan_fwd(
    activation,
    unroll,
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
    memory, th, zs = _forward_pass(
        ACTIVATIONS[activation],
        unroll,
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
    residuals = (
        memory,
        th,
        zs,
        memory0,
        recurrent_kernel,
        kernels,
        output_kernel,
        kappa_m,
        gain,
        keep,
    )
    return memory, residuals


def _memory_scan_bwd(activation, unroll, residuals, d_memory):
    act = ACTIVATIONS[activation]
    (
        memory,
        th,
        zs,
        memory0,
        recurrent_kernel,
        kernels,
        output_kernel,
        kappa_m,
        gain,
        keep,
    ) = residuals
    # act(z) and act'(z) for every layer and step, in bulk.
    activations, slopes = zip(
        *[jax.jvp(act, (z,), (jnp.ones_like(z),)) for z in zs]
    )
    d_tanh = (SCALED_TANH_GAIN * SCALED_TANH_SLOPE) * gain * (1.0 - th * th)
    output_kernel_t = output_kernel.T
    recurrent_kernel_t = recurrent_kernel.T
    kernels_t = [k.T for k in kernels]

    def step(carry, xs):
        d_memory_t, keep_t, d_tanh_t, slopes_t = xs
        total = d_memory_t + carry
        d_new = keep_t * total
        d_out = d_new * d_tanh_t
        da = d_out @ output_kernel_t
        dzs = [None] * len(slopes_t)
        for layer in range(len(slopes_t) - 1, -1, -1):
            dzs[layer] = da * slopes_t[layer]
            if layer:
                da = dzs[layer] @ kernels_t[layer - 1]
        carry = total - d_new + kappa_m * d_new + dzs[0] @ recurrent_kernel_t
        return carry, (d_new, d_out, dzs)

    d_memory0, (d_new, d_out, dzs) = jax.lax.scan(
        step,
        jnp.zeros_like(memory0),
        (d_memory, keep, d_tanh, list(slopes)),
        reverse=True,
        unroll=unroll,
    )

    def weight_grad(inputs, grads):
        if not is_static(inputs.shape[0]):
            # `jax.export` cannot reshape a symbolic (T - 1) * B rows.
            return jnp.einsum("tbi,tbj->ij", inputs, grads)
        # A 2-D product over the T * B rows: as an einsum over (t, b), XLA
        # on CPU first copies a transpose of one operand (about 2x slower).
        rows = lambda v: jnp.reshape(v, (-1, v.shape[-1]))  # noqa: E731
        return rows(inputs).T @ rows(grads)

    # The memory before each step is `memory0` then `memory[:-1]`; the two
    # parts are summed separately rather than concatenated (a copy).
    d_recurrent = weight_grad(memory[:-1], dzs[0][1:]) + memory0.T @ dzs[0][0]
    d_kappa = jnp.sum(memory[:-1] * d_new[1:], axis=(0, 1)) + jnp.sum(
        memory0 * d_new[0], axis=0
    )
    d_kernels = tuple(
        weight_grad(a, dz) for a, dz in zip(activations[:-1], dzs[1:])
    )
    d_biases = tuple(jnp.sum(dz, axis=(0, 1)) for dz in dzs[1:])
    return (
        dzs[0],
        d_memory0,
        d_recurrent,
        d_kernels,
        d_biases,
        weight_grad(activations[-1], d_out),
        jnp.sum(d_out, axis=(0, 1)),
        d_kappa,
        jnp.sum(SCALED_TANH_GAIN * th * d_new, axis=(0, 1)),
        None,
    )


_memory_scan_vjp.defvjp(_memory_scan_fwd, _memory_scan_bwd)
