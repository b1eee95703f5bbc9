"""The hand-written backward pass through time of the PyTorch memory core.

`torch_core._MemoryScan.backward` calls `scan_backward`. Everything that does
not depend on the carried gradient (the activation slopes, the tanh slope
times the gain) is computed for all steps at once; the reverse loop
(`torch_steps.backward_steps`, or its fused kernel) does only the sequential
work, and every weight gradient is then one large matmul over all `T * B`
rows.
"""

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

    steps, batch, units = tanh.shape
    hidden = post[0].shape[-1]
    rows = steps * batch
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
        torch_steps.scripted(torch_steps.backward_steps)(
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
