"""Sequential grey CIFAR-10 (LRA "Image") with an ELM neuron.

    python examples/image.py --data-dir ~/data/cifar-10-batches-py
    python examples/image.py --download        # fetches CIFAR-10 (170 MB), once
    python examples/image.py --smoke                           # < 1 min, CPU

CIFAR-10 cannot be generated: without `--data-dir` or `--download` the
script says which files to put where and exits with an error (`--smoke`
runs on tiny random pickles in the real format instead). Before any data
work it prints its plan (`--dry-run` stops there).
"""

import keras

import keras_elm
from keras_elm import tasks

task = tasks.get("image")
args = tasks.parse_args(tasks.parser(task), task)

tasks.print_plan_first(task, args)  # before any data; --dry-run stops here

# uint8 grey images (N, 32, 32), labels 0..9
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.cifar10.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.image(
        **tasks.builder_arguments(task, args, splits),
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
