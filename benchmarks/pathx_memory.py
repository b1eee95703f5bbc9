"""Memory of one Path-X training step at the paper's batch, from XLA (JAX).

    KERAS_BACKEND=jax python benchmarks/pathx_memory.py            # batch 768
    KERAS_BACKEND=jax python benchmarks/pathx_memory.py --batch-size 96

A step at the paper's batch (768 x 16,384 steps) does not fit this CPU
machine, so it is not run: the forward and backward pass of the paper's
Path-X model (`keras_elm.models.pathfinder_x`) is traced and compiled with
`jax.jit(...).lower(...).compile()` on abstract inputs (nothing is
allocated), and XLA's `memory_analysis()` of the compiled program gives
its arguments, outputs and temporary buffers. Prints one row per setting:
no remat, then `remat_chunk_size` 128 and 512. On a GPU the numbers differ
somewhat (other fusion and layouts); `benchmarks/gpu_run.sh` measures the
real peak there.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402

import keras_elm  # noqa: E402


def analysis(batch_size, remat):
    kwargs = {"remat_chunk_size": remat} if remat else {}
    model = keras_elm.models.pathfinder_x(**kwargs)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    def loss(trainable, images, labels):
        logits, _ = model.stateless_call(
            trainable, frozen, images, training=True
        )
        return loss_fn(labels, logits)

    step = jax.jit(jax.value_and_grad(loss))
    images = jax.ShapeDtypeStruct((batch_size, 128, 128), jnp.uint8)
    labels = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
    compiled = step.lower(trainable, images, labels).compile()
    return compiled.memory_analysis()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=768)
    p.add_argument(
        "--remat", default="0,128,512", help="remat_chunk_size values (0: none)"
    )
    args = p.parse_args()
    assert keras.backend.backend() == "jax", "run with KERAS_BACKEND=jax"
    print(
        f"Path-X forward + backward, batch {args.batch_size} x 16,384 "
        f"steps, XLA on {jax.devices()[0].platform}"
    )
    print(
        "| remat_chunk_size | temporaries (GiB) | arguments (GiB) | "
        "outputs (GiB) | GiB per sample |"
    )
    print("|---|---|---|---|---|")
    for remat in (int(r) for r in args.remat.split(",")):
        m = analysis(args.batch_size, remat or None)
        total = (
            m.temp_size_in_bytes
            + m.argument_size_in_bytes
            + m.output_size_in_bytes
        ) / 2**30
        print(
            f"| {remat or 'none'} | {m.temp_size_in_bytes / 2**30:.2f} | "
            f"{m.argument_size_in_bytes / 2**30:.3f} | "
            f"{m.output_size_in_bytes / 2**30:.3f} | "
            f"{total / args.batch_size:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
