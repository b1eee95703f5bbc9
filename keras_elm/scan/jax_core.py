"""The ELM memory recurrence on JAX: `lax.scan`, tuned unroll, optional remat."""

import functools

import jax
import jax.numpy as jnp

from keras_elm.math import SCALED_TANH_GAIN
from keras_elm.math import SCALED_TANH_SLOPE
from keras_elm.scan.common import combine_linear_steps

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

DEFAULT_UNROLL = 4


@jax.jit
def linear_trace(decays, inputs, initial):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` for batch-major `(B, T, C)` inputs.

    An associative scan, jitted so that eager calls do not dispatch its
    O(log T) levels op by op.
    """
    cumulative, traces = jax.lax.associative_scan(
        combine_linear_steps, (decays, inputs), axis=1
    )
    return traces + cumulative * initial[:, None, :]


@functools.partial(
    jax.jit, static_argnames=("activation", "unroll", "remat_chunk")
)
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
    remat_chunk=None,
):
    """Runs the memory recurrence over `drive` `(B, T, H)`; returns `(B, T, d)`.

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
        activation: name of the hidden activation.
        mask: optional bool `(B, T)`; masked steps keep the memory.
        unroll: `lax.scan` unroll factor (True unrolls fully).
        remat_chunk: if set, rematerialise the backward pass in chunks of
            this many steps, so memory grows like `T / chunk + chunk`.

    Returns:
        The memory after every step, `(B, T, d)`.
    """
    if activation not in ACTIVATIONS:
        raise NotImplementedError(
            f"The JAX fast path has no activation {activation!r}."
        )
    act = ACTIVATIONS[activation]
    steps = drive.shape[1]
    unroll = DEFAULT_UNROLL if unroll is None else unroll
    xs_drive = jnp.swapaxes(drive, 0, 1)
    xs_mask = None if mask is None else jnp.swapaxes(mask, 0, 1)[..., None]

    def step(memory, xs):
        drive_t, mask_t = xs
        h = act(drive_t + memory @ recurrent_kernel)
        for kernel, bias in zip(hidden_kernels, hidden_biases):
            h = act(h @ kernel + bias)
        out = h @ output_kernel + output_bias
        delta = SCALED_TANH_GAIN * jnp.tanh(SCALED_TANH_SLOPE * out)
        new = kappa_m * memory + gain * delta
        if mask_t is not None:
            new = jnp.where(mask_t, new, memory)
        return new, new

    if not remat_chunk or remat_chunk >= steps:
        _, out = jax.lax.scan(step, memory0, (xs_drive, xs_mask), unroll=unroll)
        return jnp.swapaxes(out, 0, 1)

    chunk = int(remat_chunk)
    num_chunks = -(-steps // chunk)
    pad = num_chunks * chunk - steps
    if xs_mask is None:
        xs_mask = jnp.ones((steps, drive.shape[0], 1), bool)
    if pad:
        # Padded steps are masked, so they leave the memory unchanged.
        xs_drive = jnp.pad(xs_drive, ((0, pad), (0, 0), (0, 0)))
        xs_mask = jnp.pad(xs_mask, ((0, pad), (0, 0), (0, 0)))
    xs_drive = xs_drive.reshape((num_chunks, chunk) + xs_drive.shape[1:])
    xs_mask = xs_mask.reshape((num_chunks, chunk) + xs_mask.shape[1:])

    @jax.checkpoint
    def run_chunk(memory, xs):
        return jax.lax.scan(step, memory, xs, unroll=unroll)

    _, out = jax.lax.scan(run_chunk, memory0, (xs_drive, xs_mask))
    out = out.reshape((num_chunks * chunk,) + out.shape[2:])[:steps]
    return jnp.swapaxes(out, 0, 1)
