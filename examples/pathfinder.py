"""Pathfinder (LRA) with an ELM neuron: do two discs lie on one curve?

    KERAS_BACKEND=jax python examples/pathfinder.py            # paper recipe
    python examples/pathfinder.py --smoke                      # < 1 min, CPU
    python examples/pathfinder.py --difficulty easy --epochs 20
    python examples/pathfinder.py --data-dir ~/data/lra_release
    python examples/pathfinder.py --dry-run  # the plan and its estimates only

With no `--data-dir` the images are generated (`keras_elm.data.pathfinder`,
cached under `--output-dir`); with it, the LRA release is read
(`<data-dir>/pathfinder32/curv_contour_length_14/...`). Ctrl-C stops
training at the end of the step (exit status 130, the last finished
epoch kept); rerun the same command and training resumes where it stopped.
"""

import keras

import keras_elm
from keras_elm import tasks

task = tasks.get("pathfinder")
parser = tasks.parser(task)  # and --image-size, --difficulty
args = tasks.parse_args(parser, task)

tasks.print_plan_first(task, args)  # before any data; --dry-run stops here

# uint8 images (N, S, S) and 0/1 labels
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.pathfinder.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.pathfinder(
        **tasks.builder_arguments(task, args, splits),  # image_size
        **tasks.model_overrides(task, args),  # a tiny ELM under --smoke
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
