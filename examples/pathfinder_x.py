"""Path-X (LRA): Pathfinder at 128 x 128, 16,384 steps, with an ELM neuron.

    KERAS_BACKEND=jax python examples/pathfinder_x.py          # paper recipe
    KERAS_BACKEND=jax python examples/pathfinder_x.py --dry-run  # plan only
    python examples/pathfinder_x.py --smoke                    # < 1 min, CPU
    KERAS_BACKEND=jax python examples/pathfinder_x.py --remat-chunk-size 128

With no `--data-dir` the 200,000 images are generated first (on every
core, cached under `--output-dir`); with it, the LRA release is read
(`<data-dir>/pathfinder128/curv_contour_length_14/...`). On JAX,
`--remat-chunk-size` recomputes the forward pass in chunks during the
backward pass, so that a step's memory grows like T / chunk + chunk instead
of T (for a GPU at the paper's batch of 768).
"""

import keras

import keras_elm
from keras_elm import flags
from keras_elm import tasks

task = tasks.get("pathfinder_x")
parser = tasks.parser(task)  # and --difficulty
parser.add_argument(
    "--remat-chunk-size",
    type=flags.positive_int,
    default=None,
    help="JAX only: rematerialise in chunks of this many steps",
)
args = tasks.parse_args(parser, task)
if args.remat_chunk_size and keras.backend.backend() != "jax":
    parser.error(
        "argument --remat-chunk-size: JAX only (the backend is "
        f"{keras.backend.backend()}); run with KERAS_BACKEND=jax"
    )

overrides = tasks.model_overrides(task, args)  # a tiny ELM under --smoke
if args.remat_chunk_size:
    overrides["remat_chunk_size"] = args.remat_chunk_size
# Before any data: the model, steps, measured time; --dry-run stops here.
tasks.print_plan_first(task, args, overrides=overrides)

# uint8 images (N, 128, 128) and 0/1 labels
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.pathfinder.splits(
        image_size=128, **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.pathfinder_x(
        **tasks.builder_arguments(task, args, splits),
        **overrides,
    )
    model.compile(
        optimizer=tasks.optimizer(task, args, steps),  # Adam, cosine decay
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
tasks.print_plan(task, args, splits, model)
model.fit(
    *splits["train"],
    validation_data=splits["val"],
    epochs=args.epochs,
    batch_size=args.batch_size,
    callbacks=tasks.callbacks(args, steps),
)
tasks.report(task, model, splits, args)
