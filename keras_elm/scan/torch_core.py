"""The ELM memory recurrence on PyTorch, with a hand-written backward pass.

Recording the recurrence with autograd costs about ten graph nodes per step,
and at the sizes of an ELM neuron (a few hundred hidden units, a small batch)
the per-op overhead, not the arithmetic, is what a step costs. Here the
forward pass is a tight loop of in-place ops writing into preallocated
buffers, the backward pass through time is a reverse loop doing only the work
that must be sequential, and every weight gradient is one large matmul over
all `B * T` rows after that loop.
"""

import contextlib
import warnings
from typing import List
from typing import Optional

import torch
import torch.nn.functional as F

from keras_elm.math import SCALED_TANH_GAIN
from keras_elm.math import SCALED_TANH_SLOPE
from keras_elm.scan import triton_core


def _relu_derivative(z, a):
    # a = relu(z) >= 0, so its sign is the slope in one pass.
    return torch.sign(a)


def _tanh_derivative(z, a):
    return 1.0 - a * a


def _sigmoid_derivative(z, a):
    return a * (1.0 - a)


def _elu_derivative(z, a):
    # For z <= 0, elu(z) = exp(z) - 1, so its slope exp(z) is a + 1.
    return torch.where(a > 0, torch.ones_like(a), a + 1.0)


def _softplus_derivative(z, a):
    # sigmoid(z) = 1 - exp(-softplus(z)); expm1 keeps it exact for tiny a.
    return -torch.expm1(-a)


def _silu_derivative(z, a):
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _gelu_derivative(z, a):
    cdf = 0.5 * (1.0 + torch.erf(z * 0.7071067811865476))
    pdf = torch.exp(-0.5 * z * z) * 0.3989422804014327
    return cdf + z * pdf


# name: (in_place, derivative). The loops apply an in-place activation over
# the pre-activation, so its derivative is computed from the activation
# alone; the others keep both. A None derivative is 1 (linear).
_ACTIVATIONS = {
    "relu": (True, _relu_derivative),
    "tanh": (True, _tanh_derivative),
    "sigmoid": (True, _sigmoid_derivative),
    "elu": (True, _elu_derivative),
    "softplus": (False, _softplus_derivative),
    "silu": (False, _silu_derivative),
    "gelu": (False, _gelu_derivative),
    "linear": (True, None),
}

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


def _check_activation(activation, table):
    if activation not in table:
        raise NotImplementedError(
            f"The PyTorch memory core has no activation {activation!r}; "
            f"supported: {sorted(table)}."
        )


# The two sequential loops run as TorchScript: the interpreter dispatches a
# step's ops in C++, which took a third off each loop against the same ops
# issued from Python (41 -> 29 ms forward, NeuronIO d_m = 100, batch 8,
# T = 500, one CPU thread). Activations are passed by code.
_ACTIVATION_CODES = triton_core.ACTIVATION_CODES


def _forward_steps(
    pre: List[torch.Tensor],
    post: List[torch.Tensor],
    memory: torch.Tensor,
    tanh: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    hidden_kernels: List[torch.Tensor],
    hidden_biases: List[torch.Tensor],
    output_kernel: torch.Tensor,
    output_bias: torch.Tensor,
    decays: torch.Tensor,
    gains: torch.Tensor,
    skipped: Optional[torch.Tensor],
    activation: int,
):
    """The forward loop of `_scan_forward`, writing into its buffers.

    A buffer is `(T, B, width)` to keep every step, or `(B, width)` scratch.
    """
    steps = pre[0].shape[0]
    per_step = decays.dim() == 3
    layers = len(pre)
    h = memory[0]
    for t in range(steps):
        m = memory[t]
        for layer in range(layers):
            if layer == 0:
                z = pre[0][t].addmm_(m, recurrent_kernel)
            else:
                z_out = pre[layer][t] if pre[layer].dim() == 3 else pre[layer]
                z = torch.addmm(
                    hidden_biases[layer - 1],
                    h,
                    hidden_kernels[layer - 1],
                    out=z_out,
                )
            h = post[layer][t] if post[layer].dim() == 3 else post[layer]
            if activation == 0:
                z.relu_()
            elif activation == 1:
                z.tanh_()
            elif activation == 2:
                z.sigmoid_()
            elif activation == 3:
                torch.nn.functional.elu(z, inplace=True)
            elif activation == 4:
                h.copy_(torch.nn.functional.softplus(z, 1.0, 20.0))
            elif activation == 5:
                h.copy_(torch.nn.functional.silu(z))
            elif activation == 6:
                h.copy_(torch.nn.functional.gelu(z))
        th = torch.addmm(
            output_bias,
            h,
            output_kernel,
            out=tanh[t] if tanh.dim() == 3 else tanh,
        )
        th.tanh_()
        if skipped is not None:
            # Gain 0 alone would let a non-finite input at a masked step
            # into the memory (0 * nan); `where` in the reference does not.
            th.masked_fill_(skipped[t], 0.0)
        decay = decays[t] if per_step else decays
        gain = gains[t] if per_step else gains
        torch.mul(m, decay, out=memory[t + 1]).addcmul_(gain, th)


def _backward_steps(
    d_memory: torch.Tensor,
    d_out: torch.Tensor,
    d_pre: List[torch.Tensor],
    kernels_t: List[torch.Tensor],
    recurrent_kernel_t: torch.Tensor,
    decays: torch.Tensor,
    scratch: torch.Tensor,
    scaled: bool,
):
    """The reverse loop of `_scan_backward`, writing into its buffers.

    `kernels_t[l]` is the transposed kernel that reads layer `l`.
    """
    steps = d_out.shape[0]
    per_step = decays.dim() == 3
    layers = len(d_pre)
    for i in range(steps):
        t = steps - 1 - i
        dm = d_memory[t + 1]
        grad = d_out[t].mul_(dm)
        for j in range(layers):
            layer = layers - 1 - j
            if scaled:
                torch.mm(grad, kernels_t[layer], out=scratch)
                grad = d_pre[layer][t].mul_(scratch)
            else:
                grad = torch.mm(grad, kernels_t[layer], out=d_pre[layer][t])
        decay = decays[t] if per_step else decays
        d_memory[t].addcmul_(dm, decay).addmm_(grad, recurrent_kernel_t)


def _trace_steps(
    decays: torch.Tensor, values: torch.Tensor, initial: torch.Tensor
):
    """`values[t] = decays[t] * b_{t-1} + values[t]` in place, time-major."""
    b = initial
    for t in range(values.shape[0]):
        b = values[t].addcmul_(decays[t], b)


def _time_major_copy(x):
    """`x.transpose(0, 1)` in new contiguous storage.

    `.contiguous()` returns the same tensor when the transpose is contiguous
    already (batch or time of length 1); writing into that would write into
    `x`.
    """
    return x.transpose(0, 1).clone(memory_format=torch.contiguous_format)


class _LinearTrace(torch.autograd.Function):
    """`b_t = κ_t ⊙ b_{t-1} + a_t` as one loop each way (CPU).

    Keras's torch `associative_scan` issues a few dozen ops per level and
    tracks them all in autograd; this is one op per step each way. The
    backward pass is the same recurrence reversed: `G_t = g_t + κ_{t+1}
    G_{t+1}`, `da_t = G_t`, `dκ_t = G_t b_{t-1}`, `db_0 = κ_0 G_0`.
    """

    @staticmethod
    def forward(ctx, decays, inputs, initial):
        decays = decays.transpose(0, 1).contiguous()
        # The loop writes into `traces`: a copy, never a view of `inputs`.
        traces = _time_major_copy(inputs)
        _scripted(_trace_steps)(decays, traces, initial)
        ctx.save_for_backward(decays, traces, initial)
        return traces.transpose(0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        decays, traces, initial = ctx.saved_tensors
        totals = grad.transpose(0, 1).flip(0).contiguous()
        next_decays = torch.cat(
            [torch.ones_like(decays[:1]), decays[1:].flip(0)], 0
        )
        _scripted(_trace_steps)(next_decays, totals, torch.zeros_like(initial))
        totals = totals.flip(0)
        previous = torch.cat([initial[None], traces[:-1]], 0)
        return (
            (totals * previous).transpose(0, 1),
            totals.transpose(0, 1),
            decays[0] * totals[0],
        )


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


_SCRIPTED = {}


def _scripted(function):
    """`function` compiled by TorchScript once, on first use.

    TorchScript is deprecated in PyTorch 2.13 but still the one way to run a
    loop of eager ops without Python in between. If it is missing or fails,
    the same function runs as plain Python (about 30% slower).
    """
    name = function.__name__
    if name not in _SCRIPTED:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                _SCRIPTED[name] = torch.jit.script(function)
        except Exception:  # noqa: BLE001 - any failure: run it uncompiled.
            _SCRIPTED[name] = function
    return _SCRIPTED[name]


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
        _scripted(_forward_steps)(
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
            _ACTIVATION_CODES[activation],
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


def _scan_backward(ctx, saved, grad_out):
    """The backward pass of `_MemoryScan`: one gradient per forward input."""
    num_hidden = ctx.num_hidden
    layers = num_hidden + 1
    (
        memory,
        tanh,
        recurrent_kernel,
        slope_kernel,
        decays,
        gains,
        step_mask,
    ) = saved[:7]
    post = list(saved[7 : 7 + layers])
    pre = post if ctx.in_place else list(saved[7 + layers : 7 + 2 * layers])
    hidden_kernels = saved[len(saved) - num_hidden :] if num_hidden else ()
    (
        _,
        _,
        _,
        need_drive,
        need_memory0,
        need_recurrent,
        need_output_kernel,
        need_output_bias,
        need_kappa,
        need_gain,
    ) = ctx.needs_input_grad[:10]
    need_hidden_kernels = ctx.needs_input_grad[10 : 10 + num_hidden]
    need_hidden_biases = ctx.needs_input_grad[10 + num_hidden :]

    steps, batch, units = tanh.shape
    hidden = post[0].shape[-1]
    rows = steps * batch
    _, derivative = _ACTIVATIONS[ctx.activation]
    # Everything that does not depend on the carried gradient is done
    # for all steps at once: the activation slopes and the tanh slope
    # times the gain. The loop then overwrites each step of these with
    # the gradient it scales, which saves a buffer per layer.
    # Contiguous like every buffer of the loop (the fused kernel needs it).
    d_out = (gains * (1.0 - tanh * tanh)).contiguous()
    d_pre = [
        post[0].new_empty(post[0].shape)
        if derivative is None
        else derivative(z, a)
        for z, a in zip(pre, post)
    ]
    scaled = derivative is not None

    # d_memory[t] becomes dL/dm_t; it starts as the direct gradient of
    # the output and the loop adds what flows back from step t + 1.
    d_memory = memory.new_empty(memory.shape)
    d_memory[0].zero_()
    d_memory[1:].copy_(grad_out.transpose(0, 1))

    fused = triton_core.usable(grad_out, ctx.activation, layers) and (
        triton_core.backward_steps(
            d_memory,
            d_out,
            d_pre[0],
            slope_kernel,
            recurrent_kernel,
            decays,
            scaled,
        )
    )
    if not fused:
        # The kernel that reads layer l, transposed: the hidden kernels, then
        # the output kernel. Contiguous transposes, as in the forward loop.
        kernels_t = [k.t().contiguous() for k in hidden_kernels]
        kernels_t.append(slope_kernel.t().contiguous())
        _scripted(_backward_steps)(
            d_memory,
            d_out,
            d_pre,
            kernels_t,
            recurrent_kernel.t().contiguous(),
            decays,
            post[0].new_empty((batch, hidden)),
            scaled,
        )

    grads = {}
    if need_drive:
        grads["drive"] = d_pre[0].transpose(0, 1)
    if need_memory0:
        grads["memory0"] = d_memory[0].clone()

    def flat(x):
        return x.reshape(rows, x.shape[-1])

    if need_recurrent:
        grads["recurrent_kernel"] = torch.mm(
            flat(memory[:-1]).t(), flat(d_pre[0])
        )
    if need_output_kernel:
        grads["output_kernel"] = torch.mm(flat(post[-1]).t(), flat(d_out)).mul_(
            SCALED_TANH_SLOPE
        )
    if need_output_bias:
        grads["output_bias"] = flat(d_out).sum(0).mul_(SCALED_TANH_SLOPE)
    if need_kappa or need_gain:
        d_new = d_memory[1:]
        if step_mask is not None:
            # kappa_m and gain do not act in a masked step.
            d_new = d_new * step_mask
        if need_kappa:
            grads["kappa_m"] = flat(d_new * memory[:-1]).sum(0)
        if need_gain:
            grads["gain"] = flat(d_new * tanh).sum(0).mul_(SCALED_TANH_GAIN)
    hidden_kernel_grads = [
        torch.mm(flat(post[k]).t(), flat(d_pre[k + 1])) if need else None
        for k, need in enumerate(need_hidden_kernels)
    ]
    hidden_bias_grads = [
        flat(d_pre[k + 1]).sum(0) if need else None
        for k, need in enumerate(need_hidden_biases)
    ]
    return (
        None,
        None,
        None,
        grads.get("drive"),
        grads.get("memory0"),
        grads.get("recurrent_kernel"),
        grads.get("output_kernel"),
        grads.get("output_bias"),
        grads.get("kappa_m"),
        grads.get("gain"),
        *hidden_kernel_grads,
        *hidden_bias_grads,
    )


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
        **options: none are supported; any raises `NotImplementedError`.

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
    if options:
        raise NotImplementedError(
            "The PyTorch memory core takes no options. Received: "
            f"{sorted(options)}"
        )
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
