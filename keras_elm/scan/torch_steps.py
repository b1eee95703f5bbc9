"""The time loops of the PyTorch core, run as TorchScript.

The interpreter dispatches a step's ops in C++, which took a third off each
loop against the same ops issued from Python (41 -> 29 ms forward, NeuronIO
d_m = 100, batch 8, T = 500, one CPU thread). Each loop writes into buffers
its caller allocates; `keras_elm.scan.triton_core` has fused CUDA versions
of `forward_steps` and `backward_steps` that write into the same buffers.
Activations are passed by code (`ACTIVATION_CODES`).
"""

import warnings
from typing import List
from typing import Optional

import torch

from keras_elm.scan import triton_core

# The activation codes of these loops and of the fused kernels.
ACTIVATION_CODES = triton_core.ACTIVATION_CODES


_SCRIPTED = {}


def scripted(function):
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


def forward_steps(
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
    """The forward loop of `torch_core._scan_forward`, writing into its buffers.

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


def backward_steps(
    d_memory: torch.Tensor,
    d_out: torch.Tensor,
    d_pre: List[torch.Tensor],
    kernels_t: List[torch.Tensor],
    recurrent_kernel_t: torch.Tensor,
    decays: torch.Tensor,
    scratch: torch.Tensor,
    scaled: bool,
):
    """The reverse loop of `torch_backward.scan_backward`, into its buffers.

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


def trace_steps(
    decays: torch.Tensor, values: torch.Tensor, initial: torch.Tensor
):
    """`values[t] = decays[t] * b_{t-1} + values[t]` in place, time-major."""
    b = initial
    for t in range(values.shape[0]):
        b = values[t].addcmul_(decays[t], b)
