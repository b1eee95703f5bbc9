"""The ELM memory recurrence on PyTorch, with a hand-written backward pass.

Recording the recurrence with autograd costs about ten graph nodes per step,
and at the sizes of an ELM neuron (a few hundred hidden units, a small batch)
the per-op overhead, not the arithmetic, is what a step costs. Here the
forward pass is a tight loop of in-place ops writing into preallocated
buffers, the backward pass through time is a reverse loop doing only the work
that must be sequential, and every weight gradient is one large matmul over
all `B * T` rows after that loop.

This module holds the contract (`memory_scan`, `linear_trace`, `supports`)
and the forward pass; `torch_steps` holds the TorchScript time loops,
`torch_backward` the backward pass through time, and `triton_core` the
fused CUDA kernels of the loops.
"""

import contextlib

import torch
import torch.nn.functional as F

from keras_elm.math import SCALED_TANH_GAIN
from keras_elm.math import SCALED_TANH_SLOPE
from keras_elm.scan import torch_steps
from keras_elm.scan import triton_core
from keras_elm.scan.torch_backward import ACTIVATIONS as _ACTIVATIONS
from keras_elm.scan.torch_backward import scan_backward as _scan_backward

# The hidden activations of `memory_scan` (see `supports`).
SUPPORTED_ACTIVATIONS = tuple(_ACTIVATIONS)


_REFERENCE_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "softplus": F.softplus,
    "silu": F.silu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "linear": lambda x: x,
}


# Largest per-step matmul, in multiply-adds, for which a whole pass of the
# scan (forward or backward, batched weight gradients included) runs on one
# CPU thread. Below it a step's matmuls are too small to share between
# threads, and on a busy machine any multi-threaded op can stall until a
# descheduled worker thread runs again: on 2 shared cores, 2 threads made
# the scan 2 to 3 times slower than 1. On an idle machine only the batched
# weight gradients (about a sixth of the one-thread time) would gain from
# more threads; set this to 0 to keep the caller's thread count throughout.
SINGLE_THREAD_MAX_STEP_WORK = 1 << 22


@contextlib.contextmanager
def _one_thread_if_small(device, batch, hidden, units):
    """Runs the enclosed pass on one CPU thread when its steps are small."""
    threads = torch.get_num_threads()
    if (
        device.type != "cpu"
        or threads == 1
        or batch * hidden * max(hidden, units) > SINGLE_THREAD_MAX_STEP_WORK
        # PyTorch's native thread pool cannot be resized once used.
        or not torch.backends.openmp.is_available()
    ):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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


def _check_activation(activation, table):
    if activation not in table:
        raise NotImplementedError(
            f"The PyTorch memory core has no activation {activation!r}; "
            f"supported: {sorted(table)}."
        )


def _time_major_copy(x):
    """`x.transpose(0, 1)` in new contiguous storage.

    `.contiguous()` returns the same tensor when the transpose is contiguous
    already (batch or time of length 1); writing into that would write into
    `x`.
    """
    return x.transpose(0, 1).clone(memory_format=torch.contiguous_format)


def _shared_decay(decays):
    """The `(C,)` decay of a `(B, T, C)` broadcast of one, else None."""
    if decays.dim() == 3 and decays.stride(0) == 0 and decays.stride(1) == 0:
        return decays[0, 0]
    return None


class _LinearTrace(torch.autograd.Function):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` as one loop each way (CPU).

    Keras's torch `associative_scan` issues a few dozen ops per level and
    tracks them all in autograd; this is one op per step each way. The
    backward pass is the same recurrence reversed: `G_t = g_t + κ_{t+1}
    G_{t+1}`, `da_t = G_t`, `dκ_t = G_t b_{t-1}`, `db_0 = κ_0 G_0`. A decay
    broadcast from one `(C,)` vector (no mask) is read as that vector, not
    copied out to `(T, B, C)`; both passes run on one thread when small.
    """

    @staticmethod
    def forward(ctx, decays, inputs, initial):
        batch, _, channels = inputs.shape
        with _one_thread_if_small(inputs.device, batch, channels, channels):
            shared = _shared_decay(decays)
            if shared is None:
                decays = decays.transpose(0, 1).contiguous()
            else:
                decays = shared.contiguous()
            # The loop writes into `traces`: a copy, never a view of
            # `inputs`.
            traces = _time_major_copy(inputs)
            torch_steps.scripted(torch_steps.trace_steps)(
                decays, traces, initial, False
            )
        ctx.save_for_backward(decays, traces, initial)
        return traces.transpose(0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        decays, traces, initial = ctx.saved_tensors
        need_decays, _, need_initial = ctx.needs_input_grad
        batch, _, channels = grad.shape
        with _one_thread_if_small(grad.device, batch, channels, channels):
            # New storage: the loop writes into it (`grad` may be a
            # broadcast, or a view `.contiguous()` would return as is).
            totals = _time_major_copy(grad)
            torch_steps.scripted(torch_steps.trace_steps)(
                decays, totals, initial, True
            )
            d_decays = None
            if need_decays:
                d_decays = torch.empty_like(totals)
                if totals.shape[0]:
                    torch.mul(totals[0], initial, out=d_decays[0])
                    torch.mul(totals[1:], traces[:-1], out=d_decays[1:])
                d_decays = d_decays.transpose(0, 1)
            d_initial = None
            if need_initial:
                first = decays[0] if decays.dim() == 3 else decays
                if totals.shape[0]:
                    d_initial = first * totals[0]
                else:
                    d_initial = torch.zeros_like(initial)
        return d_decays, totals.transpose(0, 1), d_initial


def _doubling_trace(decays, inputs, initial):
    """The same recurrence in `log2(T)` rounds of whole-tensor ops (GPU).

    Round `k` composes every step with the one `2^k` steps before it
    (Hillis-Steele); autograd differentiates it. On a GPU this is a few
    dozen kernels where the loop would be one per step.
    """
    steps = inputs.shape[1]
    a, b = decays, inputs
    shift = 1
    while shift < steps:
        # Steps before the start are the identity: decay 1, value 0.
        a_before = F.pad(a[:, :-shift], (0, 0, shift, 0), value=1.0)
        b_before = F.pad(b[:, :-shift], (0, 0, shift, 0), value=0.0)
        a, b = a * a_before, a * b_before + b
        shift *= 2
    return b + a * initial[:, None]


# Both cores are opaque to torch.compile (`jit_compile=True`): Dynamo breaks
# the graph at the call and runs them as they are. Their loops are already
# TorchScript or Triton; traced, they broke the graph at every warnings
# filter and thread-count switch inside, and compiled for longer.
@torch.compiler.disable
def linear_trace(decays, inputs, initial):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` for batch-major `(B, T, C)` inputs.

    A loop each way on the CPU, `_doubling_trace` elsewhere. (Keras 3.15's
    torch `associative_scan` makes CPU tensors, so it fails on a GPU.)
    """
    if inputs.device.type == "cpu":
        return _LinearTrace.apply(decays, inputs, initial)
    return _doubling_trace(decays, inputs, initial)


def _scan_forward(
    drive,
    memory0,
    recurrent_kernel,
    hidden_kernels,
    hidden_biases,
    output_kernel,
    output_bias,
    decays,
    gains,
    step_mask,
    activation,
    keep,
):
    """Runs the recurrence; keeps every per-step value only if `keep`.

    `output_kernel` and `output_bias` carry the tanh slope, and `gains` the
    tanh gain. `decays` and `gains` are `(T, B, d)` when masked (a masked
    step has decay 1 and gain 0), else `(d,)`; `step_mask` is the bool
    `(T, B, 1)` mask or None.

    Returns:
        `(memory, pre, post, tanh)`: the memory `(T + 1, B, d)` from `m_0`,
        and, if `keep`, each layer's pre-activations and activations
        `(T, B, H)` (the same tensors for an in-place activation) and the
        tanh values `(T, B, d)`.
    """
    batch, steps, hidden = drive.shape
    units = memory0.shape[-1]
    in_place, _ = _ACTIVATIONS[activation]
    # MKL's small matmuls ran slower on a transposed right-hand side.
    recurrent_kernel = recurrent_kernel.contiguous()
    hidden_kernels = [kernel.contiguous() for kernel in hidden_kernels]
    output_kernel = output_kernel.contiguous()
    new = drive.new_empty
    layers = len(hidden_kernels) + 1

    def buffer(shape):
        # Time-major, so that a step's slice is a contiguous (B, ...) block
        # and the weight gradients later read all steps as one (T * B, ...)
        # matrix. Without `keep`, one scratch block serves every step.
        return new((steps,) + shape) if keep else new(shape)

    # The first layer adds into a time-major copy of the drive: reading the
    # drive in place would gather B rows T * H apart in every step.
    first = new((steps, batch, hidden))
    first.copy_(drive.transpose(0, 1))
    pre = [first] + [buffer((batch, hidden)) for _ in range(layers - 1)]
    post = pre if in_place else [buffer((batch, hidden)) for _ in range(layers)]
    tanh = buffer((batch, units))
    memory = new((steps + 1, batch, units))
    memory[0].copy_(memory0)
    skipped = None if step_mask is None else ~step_mask
    fused = triton_core.usable(drive, activation, layers) and (
        triton_core.forward_steps(
            first,
            post[0],
            memory,
            tanh,
            recurrent_kernel,
            output_kernel,
            output_bias,
            decays,
            gains,
            skipped,
            activation,
            in_place,
        )
    )
    if not fused:
        torch_steps.scripted(torch_steps.forward_steps)(
            pre,
            post,
            memory,
            tanh,
            recurrent_kernel,
            hidden_kernels,
            list(hidden_biases),
            output_kernel,
            output_bias,
            decays,
            gains,
            skipped,
            torch_steps.ACTIVATION_CODES[activation],
        )
    if not keep:
        return memory, None, None, None
    return memory, pre, post, tanh


def _coefficients(output_kernel, output_bias, kappa_m, gain, mask):
    """Folds the scaled tanh into the last layer and the mask into κ_m, gain.

    Returns:
        `(output_kernel, output_bias, decays, gains, step_mask)`: the last
        layer times the tanh slope; κ_m and the gain times the tanh gain,
        `(d,)`, or `(T, B, d)` with decay 1 and gain 0 at masked steps; the
        mask as bool `(T, B, 1)` or None.
    """
    slope_kernel = output_kernel * SCALED_TANH_SLOPE
    slope_bias = output_bias * SCALED_TANH_SLOPE
    gains = gain * SCALED_TANH_GAIN
    if mask is None:
        return slope_kernel, slope_bias, kappa_m, gains, None
    step_mask = mask.to(torch.bool).transpose(0, 1).unsqueeze(-1)
    decays = torch.where(step_mask, kappa_m, 1.0)
    gains = torch.where(step_mask, gains, 0.0)
    return slope_kernel, slope_bias, decays, gains, step_mask


class _MemoryScan(torch.autograd.Function):
    """The recurrence with a backward pass through time written by hand."""

    @staticmethod
    def forward(
        ctx,
        activation,
        num_hidden,
        mask,
        drive,
        memory0,
        recurrent_kernel,
        output_kernel,
        output_bias,
        kappa_m,
        gain,
        *hidden,
    ):
        hidden_kernels = hidden[:num_hidden]
        batch, _, width = drive.shape
        with _one_thread_if_small(drive.device, batch, width, gain.shape[-1]):
            slope_kernel, slope_bias, decays, gains, step_mask = _coefficients(
                output_kernel, output_bias, kappa_m, gain, mask
            )
            memory, pre, post, tanh = _scan_forward(
                drive,
                memory0,
                recurrent_kernel,
                hidden_kernels,
                hidden[num_hidden:],
                slope_kernel,
                slope_bias,
                decays,
                gains,
                step_mask,
                activation,
                keep=True,
            )
            # A copy, so that the output owns its storage and is not a
            # view of a tensor saved for the backward pass (`.contiguous()`
            # would return a view for a batch of one).
            out = _time_major_copy(memory[1:])
        in_place, _ = _ACTIVATIONS[activation]
        ctx.activation = activation
        ctx.num_hidden = num_hidden
        ctx.in_place = in_place
        ctx.save_for_backward(
            memory,
            tanh,
            recurrent_kernel,
            slope_kernel,
            decays,
            gains,
            step_mask,
            *post,
            *([] if in_place else pre),
            *hidden_kernels,
        )
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        batch, _, units = grad_out.shape
        width = saved[7].shape[-1]  # The first layer's activations.
        with _one_thread_if_small(grad_out.device, batch, width, units):
            return _scan_backward(ctx, saved, grad_out)


@torch.compiler.disable
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

    A `torch.autograd.Function` with a hand-written backward pass through
    time (not twice differentiable). All tensors share one floating dtype and
    device. On CPU, each pass runs on one thread while a step's largest
    matmul is below `SINGLE_THREAD_MAX_STEP_WORK` multiply-adds; the thread
    count is restored afterwards.

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
        activation: name of the hidden activation, one of `"relu"`,
            `"silu"`, `"tanh"`, `"sigmoid"`, `"gelu"` (exact), `"elu"`,
            `"softplus"` or `"linear"`.
        mask: optional bool `(B, T)`; masked steps keep the memory.
        **options: the options of other cores (JAX's `unroll` and
            `remat_chunk`); this core has none and ignores them.

    Returns:
        The memory after every step, `(B, T, d)`.

    Example:

    >>> b, t, d, h = 2, 5, 3, 4
    >>> out = memory_scan(
    ...     torch.randn(b, t, h), torch.zeros(b, d), torch.randn(d, h),
    ...     [], [], torch.randn(h, d), torch.zeros(d),
    ...     torch.full((d,), 0.9), torch.full((d,), 0.1), "relu")
    >>> tuple(out.shape)
    (2, 5, 3)
    """
    del options  # None apply here (see `supports`).
    _check_activation(activation, _ACTIVATIONS)
    hidden_kernels = list(hidden_kernels)
    hidden_biases = list(hidden_biases)
    if len(hidden_kernels) != len(hidden_biases):
        raise ValueError(
            "Expected as many hidden kernels as hidden biases. Received: "
            f"{len(hidden_kernels)} kernels and {len(hidden_biases)} biases."
        )
    tensors = [
        drive,
        memory0,
        recurrent_kernel,
        output_kernel,
        output_bias,
        kappa_m,
        gain,
        *hidden_kernels,
        *hidden_biases,
    ]
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)):
        # Nothing to differentiate: one scratch block per layer is enough.
        batch, _, width = drive.shape
        with (
            torch.no_grad(),
            _one_thread_if_small(drive.device, batch, width, gain.shape[-1]),
        ):
            slope_kernel, slope_bias, decays, gains, step_mask = _coefficients(
                output_kernel, output_bias, kappa_m, gain, mask
            )
            memory, _, _, _ = _scan_forward(
                drive,
                memory0,
                recurrent_kernel,
                hidden_kernels,
                hidden_biases,
                slope_kernel,
                slope_bias,
                decays,
                gains,
                step_mask,
                activation,
                keep=False,
            )
            return memory[1:].transpose(0, 1).contiguous()
    return _MemoryScan.apply(
        activation,
        len(hidden_kernels),
        mask,
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


def memory_scan_reference(
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
    """The recurrence of `memory_scan`, one autograd-recorded step at a time.

    Takes the arguments of `memory_scan` (without options) and returns the
    memory after every step, `(B, T, d)`: the plain loop the fast core is
    checked against.
    """
    _check_activation(activation, _REFERENCE_ACTIVATIONS)
    act = _REFERENCE_ACTIVATIONS[activation]
    batch, steps, _ = drive.shape
    memory = memory0
    outputs = []
    for t in range(steps):
        h = act(drive[:, t] + memory @ recurrent_kernel)
        for kernel, bias in zip(hidden_kernels, hidden_biases):
            h = act(h @ kernel + bias)
        out = h @ output_kernel + output_bias
        delta = SCALED_TANH_GAIN * torch.tanh(SCALED_TANH_SLOPE * out)
        new = kappa_m * memory + gain * delta
        if mask is not None:
            new = torch.where(mask[:, t, None], new, memory)
        memory = new
        outputs.append(memory)
    if not outputs:
        return memory0.new_zeros((batch, 0, memory0.shape[-1]))
    return torch.stack(outputs, dim=1)
