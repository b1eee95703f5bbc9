"""The hand-written backward pass through time of the PyTorch memory core.

`torch_core._MemoryScan.backward` calls `scan_backward`. Everything that does
not depend on the carried gradient (the activation slopes, the tanh slope
times the gain) is computed for all steps at once; the reverse loop
(`torch_steps.backward_steps`, or its fused kernel) does only the sequential
work, and every weight gradient is then one large matmul over all `T * B`
rows.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from keras_elm.math import SCALED_TANH_GAIN
from keras_elm.math import SCALED_TANH_SLOPE
from keras_elm.scan import torch_steps
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
ACTIVATIONS = {
    "relu": (True, _relu_derivative),
    "silu": (False, _silu_derivative),
    "tanh": (True, _tanh_derivative),
    "sigmoid": (True, _sigmoid_derivative),
    "gelu": (False, _gelu_derivative),
    "elu": (True, _elu_derivative),
    "softplus": (False, _softplus_derivative),
    "linear": (True, None),
}


# Steps of the reverse loop after which the weight gradients of the steps
# done so far are handed to a second CPU thread, which multiplies them while
# the loop goes on: the loop is one small matmul after another on one core,
# and would otherwise leave the other core idle. Below two chunks' worth of
# steps, or with one CPU, everything runs on the calling thread.
OVERLAP_CHUNK_STEPS = 64

_POOL = {}
_POOL_LOCK = threading.Lock()


def _helper_pool():
    """A one-thread executor of this process (a forked child gets its own)."""
    pid = os.getpid()
    with _POOL_LOCK:
        if _POOL.get("pid") != pid:
            _POOL["pid"] = pid
            _POOL["pool"] = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="keras_elm_grads"
            )
        return _POOL["pool"]


def _can_overlap(steps):
    """Whether `steps` reverse steps on the CPU gain from a helper thread."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        cpus = os.cpu_count() or 1
    return (
        cpus > 1
        and OVERLAP_CHUNK_STEPS > 0
        and steps >= 2 * OVERLAP_CHUNK_STEPS
        and torch.get_num_threads() == 1
    )


def _chunk_products(products, start, stop, totals):
    """Adds the steps `start:stop` of every `left.T @ right` to `totals`."""
    for name, (left, right) in products.items():
        left = left[start:stop].reshape(-1, left.shape[-1])
        right = right[start:stop].reshape(-1, right.shape[-1])
        if name in totals:
            totals[name].addmm_(left.t(), right)
        else:
            totals[name] = torch.mm(left.t(), right)


def _helper_products(products, start, stop, totals):
    """`_chunk_products` on the helper thread, itself on one OpenMP thread."""
    # The count is the helper thread's own (OpenMP's is per thread); the
    # pass it overlaps runs on one thread as well.
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    _chunk_products(products, start, stop, totals)


def _loop_and_products(
    d_memory,
    d_out,
    d_pre,
    hidden_kernels,
    slope_kernel,
    recurrent_kernel,
    decays,
    scaled,
    products,
):
    """The reverse loop on the CPU, and the weight gradients of `products`.

    The loop runs in chunks of `OVERLAP_CHUNK_STEPS`, last steps first; a
    chunk's rows of every product are final once it is done, so a helper
    thread multiplies them while the next chunk runs.

    Returns:
        `{name: left.T @ right}` over all steps, for each of `products`.
    """
    # The kernel that reads layer l, transposed: the hidden kernels, then
    # the output kernel. Contiguous transposes, as in the forward loop.
    kernels_t = [k.t().contiguous() for k in hidden_kernels]
    kernels_t.append(slope_kernel.t().contiguous())
    recurrent_kernel_t = recurrent_kernel.t().contiguous()
    scratch = d_pre[0].new_empty(d_pre[0].shape[1:])
    loop = torch_steps.scripted(torch_steps.backward_steps)
    steps = d_out.shape[0]
    per_step = decays.dim() == 3

    def run(start, stop):
        loop(
            d_memory[start : stop + 1],
            d_out[start:stop],
            [d[start:stop] for d in d_pre],
            kernels_t,
            recurrent_kernel_t,
            decays[start:stop] if per_step else decays,
            scratch,
            scaled,
        )

    totals = {}
    if not products or not _can_overlap(steps):
        run(0, steps)
        _chunk_products(products, 0, steps, totals)
        return totals
    pool = _helper_pool()
    pending = None
    stop = steps
    while stop > 0:
        start = max(0, stop - OVERLAP_CHUNK_STEPS)
        run(start, stop)
        if pending is not None:
            pending.result()
        pending = pool.submit(_helper_products, products, start, stop, totals)
        stop = start
    pending.result()
    return totals


def scan_backward(ctx, saved, grad_out):
    """The backward pass of `torch_core._MemoryScan`, through time.

    Args:
        ctx: the autograd context of the forward pass (`activation`,
            `num_hidden`, `in_place`, `needs_input_grad`).
        saved: `ctx.saved_tensors`, in the order the forward pass saved
            them: memory, tanh, recurrent kernel, slope kernel, decays,
            gains, step mask, each layer's activations, then (if the
            activation is not in place) its pre-activations, then the
            hidden kernels.
        grad_out: the gradient of the output memory `(B, T, d)`.

    Returns:
        One gradient (or None) per input of the forward pass.
    """
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

    _, derivative = ACTIVATIONS[ctx.activation]
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

    def flat(x):
        return x.reshape(-1, x.shape[-1])

    # The weight gradients that are one matmul over all steps: `(left,
    # right)` for `left.T @ right`, by name.
    products = {}
    if need_recurrent:
        products["recurrent_kernel"] = (memory[:-1], d_pre[0])
    if need_output_kernel:
        products["output_kernel"] = (post[-1], d_out)
    for k, need in enumerate(need_hidden_kernels):
        if need:
            products[k] = (post[k], d_pre[k + 1])

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
    if fused:
        sums = {
            name: torch.mm(flat(left).t(), flat(right))
            for name, (left, right) in products.items()
        }
    else:
        sums = _loop_and_products(
            d_memory,
            d_out,
            d_pre,
            hidden_kernels,
            slope_kernel,
            recurrent_kernel,
            decays,
            scaled,
            products,
        )

    grads = {}
    if need_drive:
        grads["drive"] = d_pre[0].transpose(0, 1)
    if need_memory0:
        grads["memory0"] = d_memory[0].clone()
    if need_recurrent:
        grads["recurrent_kernel"] = sums["recurrent_kernel"]
    if need_output_kernel:
        grads["output_kernel"] = sums["output_kernel"].mul_(SCALED_TANH_SLOPE)
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
        sums[k] if need else None for k, need in enumerate(need_hidden_kernels)
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
