"""Fused GPU kernels (Triton) for the two time loops of the PyTorch core.

On a GPU, the loops of `keras_elm.scan.torch_steps` launch about ten small
kernels per step, and at ELM sizes each launch costs more than its work:
Path-X (16,384 steps) spends its time launching. Here each loop is one
kernel. A program owns a block of batch rows for the whole sequence, keeps
its memory (or its carried gradient) in registers, and does a step's two
matmuls with `tl.dot` in IEEE float32, reading the weights from cache.

The kernels write into exactly the buffers of the TorchScript loops they
replace (`forward_steps`, `backward_steps`), so everything around them,
the bulk weight gradients included, is shared. They cover one hidden layer
(the paper's MLP), float32 and the activations in `ACTIVATION_CODES`; for
anything else, or where Triton or a CUDA device is missing, the TorchScript
loops run instead. Set `KERAS_ELM_TRITON=0` to force those loops.

Status (benchmarks/RESULTS.md): checked against per-step autograd on an
H200 and under Triton's interpreter, and the golden cases pass through them
on CUDA. The version measured at NeuronIO size (d_m 100, H 200) on the H200
needed 532 KB of shared memory and fell back; the current one compiles for
sm_90 to 78 KB (tested offline), but its GPU speed is not measured yet.
"""

import os

import torch

try:
    import triton
    import triton.language as tl
    from triton.runtime.errors import OutOfResources
except ImportError:  # pragma: no cover - depends on the install.
    triton = None

# Block sizes whose kernel did not fit the GPU: the TorchScript loops run.
_TOO_LARGE = set()

# The activation codes of the TorchScript loops and of these kernels.
ACTIVATION_CODES = {
    "relu": 0,
    "tanh": 1,
    "sigmoid": 2,
    "elu": 3,
    "softplus": 4,
    "silu": 5,
    "gelu": 6,
    "linear": 7,
}

BLOCK_ROWS = 16  # `tl.dot` needs at least 16 rows.
HIDDEN_CHUNK = 32  # Hidden units per `tl.dot`; see `_forward_kernel`.


def usable(tensor, activation, layers):
    """Whether the fused kernels can run this recurrence."""
    if triton is None or os.environ.get("KERAS_ELM_TRITON", "1") == "0":
        return False
    on_device = tensor.device.type == "cuda" or (
        # Triton's interpreter runs the kernels on the CPU (tests).
        os.environ.get("TRITON_INTERPRET") == "1"
    )
    return (
        on_device
        and tensor.dtype == torch.float32
        and layers == 1
        and activation in ACTIVATION_CODES
    )


def _launch(kernel, key, batch, *args, **kwargs):
    """Launches `kernel`; False (and remembered) if it needs too much memory.

    Triton checks a kernel's shared memory before it runs, so nothing has
    been written when it refuses.
    """
    if key in _TOO_LARGE:
        return False
    try:
        kernel[(triton.cdiv(batch, BLOCK_ROWS),)](*args, **kwargs)
    except OutOfResources:
        _TOO_LARGE.add(key)
        return False
    return True


def _block(n):
    return max(16, triton.next_power_of_2(n))


if triton is not None:
    # Only `tl` functions, no libdevice, so that Triton's interpreter can run
    # the kernels on the CPU in the tests.
    @triton.jit
    def _tanh(x):
        e = tl.exp(-2.0 * tl.abs(x))
        t = (1.0 - e) / (1.0 + e)
        return tl.where(x < 0.0, -t, t)

    @triton.jit
    def _activation(z, ACT: tl.constexpr):
        if ACT == 0:
            a = tl.maximum(z, 0.0)
        elif ACT == 1:
            a = _tanh(z)
        elif ACT == 2:
            a = tl.sigmoid(z)
        elif ACT == 3:
            a = tl.where(z > 0.0, z, tl.exp(tl.minimum(z, 0.0)) - 1.0)
        elif ACT == 4:
            # torch's softplus: beta 1, threshold 20.
            a = tl.where(z > 20.0, z, tl.log(1.0 + tl.exp(tl.minimum(z, 20.0))))
        elif ACT == 5:
            a = z * tl.sigmoid(z)
        elif ACT == 6:
            a = 0.5 * z * (1.0 + tl.erf(z * 0.7071067811865476))
        else:
            a = z
        return a

    @triton.jit
    def _row_block(batch, units, BB: tl.constexpr, DP: tl.constexpr):
        """This program's BB batch rows and the (BB, DP) memory tile."""
        rows = tl.program_id(0) * BB + tl.arange(0, BB)
        cols_d = tl.arange(0, DP)
        row_ok = rows < batch
        d_ok = cols_d < units
        at_d = rows[:, None] * units + cols_d[None, :]
        ok_d = row_ok[:, None] & d_ok[None, :]
        return rows, cols_d, row_ok, d_ok, at_d, ok_d

    @triton.jit
    def _hidden_chunk(c, rows, row_ok, hidden, HC: tl.constexpr):
        """Columns of hidden chunk `c` and its (BB, HC) tile of a step."""
        cols_h = c * HC + tl.arange(0, HC)
        h_ok = cols_h < hidden
        at_h = rows[:, None] * hidden + cols_h[None, :]
        ok_h = row_ok[:, None] & h_ok[None, :]
        return cols_h, h_ok, at_h, ok_h

    @triton.jit
    def _forward_kernel(
        pre_ptr,
        post_ptr,
        memory_ptr,
        tanh_ptr,
        kernel_ptr,
        out_kernel_ptr,
        out_bias_ptr,
        decay_ptr,
        gain_ptr,
        skip_ptr,
        steps,
        batch,
        units,
        hidden,
        ACT: tl.constexpr,
        IN_PLACE: tl.constexpr,
        KEEP: tl.constexpr,
        PER_STEP: tl.constexpr,
        MASKED: tl.constexpr,
        BB: tl.constexpr,
        DP: tl.constexpr,
        HP: tl.constexpr,
        HC: tl.constexpr,
    ):
        # The hidden layer is done in HC-wide chunks by a loop, so that the
        # operands of `tl.dot` staged in shared memory are (DP, HC) tiles
        # that every chunk reuses. Whole (128, 256) float32 kernels, or the
        # same chunks unrolled with `tl.static_range`, compiled for sm_90
        # to 532 KB of shared memory at d_m 100, H 200 (an H200 refused to
        # launch them); this loop needs 78 KB (`test_triton_core.py`).
        rows, cols_d, row_ok, d_ok, at_d, ok_d = _row_block(
            batch, units, BB, DP
        )
        out_bias = tl.load(out_bias_ptr + cols_d, mask=d_ok, other=0.0)[None, :]
        if not PER_STEP:
            decay = tl.load(decay_ptr + cols_d, mask=d_ok, other=0.0)[None, :]
            gain = tl.load(gain_ptr + cols_d, mask=d_ok, other=0.0)[None, :]
        m = tl.load(memory_ptr + at_d, mask=ok_d, other=0.0)
        for t in range(steps):
            out = tl.zeros((BB, DP), dtype=tl.float32) + out_bias
            for c in range(HP // HC):
                cols_h, h_ok, at_h, ok_h = _hidden_chunk(
                    c, rows, row_ok, hidden, HC
                )
                kernel = tl.load(
                    kernel_ptr + cols_d[:, None] * hidden + cols_h[None, :],
                    mask=d_ok[:, None] & h_ok[None, :],
                    other=0.0,
                )
                step_h = t * batch * hidden + at_h
                z = tl.load(pre_ptr + step_h, mask=ok_h, other=0.0)
                z += tl.dot(m, kernel, input_precision="ieee")
                a = _activation(z, ACT)
                # Padded hidden columns must not reach the output.
                a = tl.where(h_ok[None, :], a, 0.0)
                if KEEP:
                    if IN_PLACE:
                        tl.store(pre_ptr + step_h, a, mask=ok_h)
                    else:
                        tl.store(pre_ptr + step_h, z, mask=ok_h)
                        tl.store(post_ptr + step_h, a, mask=ok_h)
                out_kernel = tl.load(
                    out_kernel_ptr + cols_h[:, None] * units + cols_d[None, :],
                    mask=h_ok[:, None] & d_ok[None, :],
                    other=0.0,
                )
                out += tl.dot(a, out_kernel, input_precision="ieee")
            th = _tanh(out)
            step_d = t * batch * units + at_d
            if MASKED:
                skip = tl.load(
                    skip_ptr + t * batch + rows, mask=row_ok, other=1
                )
                th = tl.where(skip[:, None] != 0, 0.0, th)
            if KEEP:
                tl.store(tanh_ptr + step_d, th, mask=ok_d)
            if PER_STEP:
                decay = tl.load(decay_ptr + step_d, mask=ok_d, other=0.0)
                gain = tl.load(gain_ptr + step_d, mask=ok_d, other=0.0)
            m = m * decay + gain * th
            tl.store(memory_ptr + batch * units + step_d, m, mask=ok_d)

    @triton.jit
    def _backward_kernel(
        d_memory_ptr,
        d_out_ptr,
        d_pre_ptr,
        out_kernel_ptr,
        kernel_ptr,
        decay_ptr,
        steps,
        batch,
        units,
        hidden,
        SCALED: tl.constexpr,
        PER_STEP: tl.constexpr,
        BB: tl.constexpr,
        DP: tl.constexpr,
        HP: tl.constexpr,
        HC: tl.constexpr,
    ):
        rows, cols_d, row_ok, d_ok, at_d, ok_d = _row_block(
            batch, units, BB, DP
        )
        if not PER_STEP:
            decay = tl.load(decay_ptr + cols_d, mask=d_ok, other=0.0)[None, :]
        carry = tl.zeros((BB, DP), dtype=tl.float32)
        for i in range(steps):
            t = steps - 1 - i
            step_d = t * batch * units + at_d
            # dL/dm_t: the output's own gradient plus what step t + 1 sent.
            dm = (
                tl.load(
                    d_memory_ptr + batch * units + step_d, mask=ok_d, other=0.0
                )
                + carry
            )
            tl.store(d_memory_ptr + batch * units + step_d, dm, mask=ok_d)
            grad = tl.load(d_out_ptr + step_d, mask=ok_d, other=0.0) * dm
            tl.store(d_out_ptr + step_d, grad, mask=ok_d)
            if PER_STEP:
                decay = tl.load(decay_ptr + step_d, mask=ok_d, other=0.0)
            carry = dm * decay
            for c in range(HP // HC):
                cols_h, h_ok, at_h, ok_h = _hidden_chunk(
                    c, rows, row_ok, hidden, HC
                )
                # The output kernel (H, d) read as its transpose (d, HC),
                # the recurrent kernel (d, H) as (HC, d): no copies.
                out_kernel_t = tl.load(
                    out_kernel_ptr + cols_d[:, None] + cols_h[None, :] * units,
                    mask=d_ok[:, None] & h_ok[None, :],
                    other=0.0,
                )
                grad_h = tl.dot(grad, out_kernel_t, input_precision="ieee")
                step_h = t * batch * hidden + at_h
                if SCALED:
                    grad_h *= tl.load(d_pre_ptr + step_h, mask=ok_h, other=0.0)
                tl.store(d_pre_ptr + step_h, grad_h, mask=ok_h)
                kernel_t = tl.load(
                    kernel_ptr + cols_h[:, None] + cols_d[None, :] * hidden,
                    mask=h_ok[:, None] & d_ok[None, :],
                    other=0.0,
                )
                carry += tl.dot(grad_h, kernel_t, input_precision="ieee")
        tl.store(d_memory_ptr + at_d, carry, mask=ok_d)


def _check_contiguous(**buffers):
    for name, buffer in buffers.items():
        if not buffer.is_contiguous():
            raise ValueError(f"The fused kernels need a contiguous `{name}`.")


def forward_steps(
    pre,
    post,
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
):
    """The fused `torch_steps.forward_steps` for one hidden layer.

    `pre` is `(T, B, H)`; `post` and `tanh` are full `(T, B, ...)` buffers
    to keep every step, or anything else not to keep them.

    Returns:
        Whether it ran; False if the kernel does not fit this GPU.
    """
    _check_contiguous(pre=pre, post=post, memory=memory, tanh=tanh)
    steps, batch, hidden = pre.shape
    units = memory.shape[-1]
    keep = tanh.dim() == 3
    per_step = decays.dim() == 3
    masked = skipped is not None
    # The kernels index every buffer as a contiguous array.
    skip = (
        skipped.to(torch.int8).contiguous().reshape(steps, batch)
        if masked
        else pre
    )
    return _launch(
        _forward_kernel,
        ("forward", units, hidden),
        batch,
        pre,
        post if keep else pre,
        memory,
        tanh if keep else memory,
        recurrent_kernel.contiguous(),
        output_kernel.contiguous(),
        output_bias.contiguous(),
        decays.contiguous(),
        gains.contiguous(),
        skip,
        steps,
        batch,
        units,
        hidden,
        ACT=ACTIVATION_CODES[activation],
        IN_PLACE=in_place,
        KEEP=keep,
        PER_STEP=per_step,
        MASKED=masked,
        BB=BLOCK_ROWS,
        DP=_block(units),
        HP=_block(hidden),
        HC=min(HIDDEN_CHUNK, _block(hidden)),
        num_warps=4,
    )


def backward_steps(
    d_memory, d_out, d_pre, output_kernel, recurrent_kernel, decays, scaled
):
    """The fused `torch_steps.backward_steps` for one hidden layer.

    Returns:
        Whether it ran; False if the kernel does not fit this GPU.
    """
    _check_contiguous(d_memory=d_memory, d_out=d_out, d_pre=d_pre)
    steps, batch, units = d_out.shape
    hidden = d_pre.shape[-1]
    return _launch(
        _backward_kernel,
        ("backward", units, hidden),
        batch,
        d_memory,
        d_out,
        d_pre,
        output_kernel.contiguous(),
        recurrent_kernel.contiguous(),
        decays.contiguous(),
        steps,
        batch,
        units,
        hidden,
        SCALED=scaled,
        PER_STEP=decays.dim() == 3,
        BB=BLOCK_ROWS,
        DP=_block(units),
        HP=_block(hidden),
        HC=min(HIDDEN_CHUNK, _block(hidden)),
        num_warps=4,
    )
