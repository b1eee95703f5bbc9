"""Checks the fused Triton loops of the PyTorch core against per-step autograd.

Run by tests/test_triton_core.py: in-process on a CUDA device, or on the CPU
in a subprocess under Triton's interpreter (`TRITON_INTERPRET=1`, which must
be set before Triton is imported). Also runnable by hand:

    TRITON_INTERPRET=1 python tests/triton_check.py
"""

import itertools
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402

from keras_elm.scan import torch_core  # noqa: E402
from keras_elm.scan import triton_core  # noqa: E402


def _case(device, activation, masked, batch, units, hidden, steps, seed):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device)

    inputs = [
        rand(batch, steps, hidden, scale=0.5),  # drive
        rand(batch, units, scale=0.3),  # memory0
        rand(units, hidden, scale=0.3),  # recurrent kernel
        rand(hidden, units, scale=0.3),  # output kernel
        rand(units, scale=0.1),  # output bias
        torch.rand(units, generator=g).to(device) * 0.5 + 0.45,  # kappa_m
        torch.rand(units, generator=g).to(device) * 0.5,  # gain
    ]
    mask = None
    if masked:
        mask = (torch.rand(batch, steps, generator=g) > 0.3).to(device)
    weights = rand(batch, steps, units)
    results = []
    for fused in (True, False):
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        drive, m0, kernel, out_kernel, out_bias, kappa, gain = leaves
        if fused:
            assert triton_core.usable(drive, activation, 1)
            out = torch_core.memory_scan(
                drive,
                m0,
                kernel,
                [],
                [],
                out_kernel,
                out_bias,
                kappa,
                gain,
                activation,
                mask=mask,
            )
        else:
            out = torch_core.memory_scan_reference(
                drive,
                m0,
                kernel,
                [],
                [],
                out_kernel,
                out_bias,
                kappa,
                gain,
                activation,
                mask=mask,
            )
        (out * weights).sum().backward()
        results.append([out.detach()] + [t.grad for t in leaves])
    names = [
        "output",
        "drive",
        "memory0",
        "recurrent_kernel",
        "output_kernel",
        "output_bias",
        "kappa_m",
        "gain",
    ]
    for name, fast, slow in zip(names, *results):
        scale = slow.abs().max().item() + 1e-6
        error = (fast - slow).abs().max().item() / scale
        if not error < 2e-5:
            raise AssertionError(
                f"{activation} masked={masked} B={batch} d={units} H={hidden}"
                f" T={steps}: {name} differs by {error:.2e} (relative)"
            )
    # Inference (no graph): the kernel without kept buffers.
    with torch.no_grad():
        out = torch_core.memory_scan(
            *inputs[:3], [], [], *inputs[3:], activation, mask=mask
        )
    error = (out - results[1][0]).abs().max().item()
    if not error < 2e-5 * (results[1][0].abs().max().item() + 1e-6):
        raise AssertionError(f"{activation} inference differs by {error}")


def _fix_interpreter_scalars():
    """Lets Triton 3.6's interpreter take `range(n)` of a scalar argument.

    The interpreter holds scalars as one-element arrays and converts them
    with `int(array)`, which NumPy >= 2.5 refuses for arrays that are not
    0-d; on a GPU the kernels never go through this code.
    """
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor

    def patch(tensor, scope):
        original(tensor, scope)
        scope.set_attr(
            tensor, "__index__", lambda self: int(self.handle.data.item())
        )

    interpreter._patch_lang_tensor = patch


def check(device, quick=False):
    if device == "cpu":
        _fix_interpreter_scalars()
    activations = sorted(triton_core.ACTIVATION_CODES)
    # (batch, units, hidden, steps): one row block and one hidden chunk;
    # two row blocks; several hidden chunks with padding (d_m 70, H 130).
    shapes = [(3, 5, 7, 4), (5, 70, 130, 3), (17, 20, 40, 6)]
    if quick:
        shapes = shapes[:2]
    count = 0
    for (batch, units, hidden, steps), activation, masked in itertools.product(
        shapes, activations, (False, True)
    ):
        _case(device, activation, masked, batch, units, hidden, steps, count)
        count += 1
    print(f"triton core: {count} cases match per-step autograd on {device}")


if __name__ == "__main__":
    check(
        sys.argv[1] if len(sys.argv) > 1 else "cpu", quick="--quick" in sys.argv
    )
