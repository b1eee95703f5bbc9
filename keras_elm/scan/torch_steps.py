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


def _steps_of(buffer: torch.Tensor, steps: int) -> List[torch.Tensor]:
    """A `(T, ...)` buffer's steps as views, or a scratch block `T` times.

    Views made in one `unbind` before a loop: indexing the buffer in the
    loop would issue one `select` op a step for each buffer.
    """
    if buffer.dim() == 3:
        return buffer.unbind(0)
    return [buffer] * steps


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
    layers = len(pre)
    pre_steps = [_steps_of(buffer, steps) for buffer in pre]
    post_steps = [_steps_of(buffer, steps) for buffer in post]
    tanh_steps = _steps_of(tanh, steps)
    memory_steps = memory.unbind(0)
    decay_steps = _steps_of(decays, steps)
    gain_steps = _steps_of(gains, steps)
    masked = skipped is not None
    skipped_steps: List[torch.Tensor] = []
    if skipped is not None:
        skipped_steps = _steps_of(skipped, steps)
    h = memory_steps[0]
    for t in range(steps):
        m = memory_steps[t]
        for layer in range(layers):
            if layer == 0:
                z = pre_steps[0][t].addmm_(m, recurrent_kernel)
            else:
                z = torch.addmm(
                    hidden_biases[layer - 1],
                    h,
                    hidden_kernels[layer - 1],
                    out=pre_steps[layer][t],
                )
            h = post_steps[layer][t]
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
        th = torch.addmm(output_bias, h, output_kernel, out=tanh_steps[t])
        th.tanh_()
        if masked:
            # Gain 0 alone would let a non-finite input at a masked step
            # into the memory (0 * nan); `where` in the reference does not.
            th.masked_fill_(skipped_steps[t], 0.0)
        torch.mul(m, decay_steps[t], out=memory_steps[t + 1]).addcmul_(
            gain_steps[t], th
        )


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

    `kernels_t[l]` is the transposed kernel that reads layer `l`. With
    `scaled`, `d_pre` holds each layer's activation slope and the loop
    multiplies the gradient into it.
    """
    steps = d_out.shape[0]
    layers = len(d_pre)
    d_memory_steps = d_memory.unbind(0)
    d_out_steps = d_out.unbind(0)
    d_pre_steps = [buffer.unbind(0) for buffer in d_pre]
    decay_steps = _steps_of(decays, steps)
    for i in range(steps):
        t = steps - 1 - i
        dm = d_memory_steps[t + 1]
        grad = d_out_steps[t].mul_(dm)
        for j in range(layers):
            layer = layers - 1 - j
            if scaled:
                torch.mm(grad, kernels_t[layer], out=scratch)
                grad = d_pre_steps[layer][t].mul_(scratch)
            else:
                grad = torch.mm(
                    grad, kernels_t[layer], out=d_pre_steps[layer][t]
                )
        d_memory_steps[t].addcmul_(dm, decay_steps[t]).addmm_(
            grad, recurrent_kernel_t
        )


def trace_steps(
    decays: torch.Tensor,
    values: torch.Tensor,
    initial: torch.Tensor,
    reverse: bool = False,
):
    """The linear trace in place over time-major `values` `(T, B, C)`.

    Forward: `values[t] += decays[t] * values[t - 1]`, from `initial`.
    Reverse, the same recurrence backwards in time (the gradient of the
    forward one): `values[t] += decays[t + 1] * values[t + 1]`; `initial`
    is not read. `decays` is `(T, B, C)` or one `(C,)` for every step.
    """
    steps = values.shape[0]
    value_steps = values.unbind(0)
    decay_steps = _steps_of(decays, steps)
    if reverse:
        for i in range(1, steps):
            t = steps - 1 - i
            value_steps[t].addcmul_(decay_steps[t + 1], value_steps[t + 1])
    else:
        b = initial
        for t in range(steps):
            b = value_steps[t].addcmul_(decay_steps[t], b)
