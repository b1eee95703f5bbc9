"""ListOps (LRA) with an ELM neuron: the value 0-9 of a nested expression.

    python examples/listops.py  # LRA lengths, paper recipe
    python examples/listops.py --max-length 200  # short trees (50-200), CPU
    python examples/listops.py --smoke                 # < 1 min, CPU
    python examples/listops.py --distribute            # all GPUs, data-parallel
    python examples/listops.py --data-dir ~/data/lra_release/listops-1000

With no `--data-dir` the trees are generated (`keras_elm.data.listops`,
cached under `--output-dir`): 100,000 trees of 500-2,000 tokens split
96,000 / 2,000 / 2,000 as in LRA, or shorter ones with `--max-length`.
With it, the release's `basic_{train,val,test}.tsv` are read. Ctrl-C stops
training at the end of the step (exit status 130, the last finished
epoch kept); rerun the same command and training resumes where it stopped.
"""

import keras

import keras_elm
from keras_elm import tasks

task = tasks.get("listops")
parser = tasks.parser(task)  # and --max-length, --min-length
args = tasks.parse_args(parser, task)

tasks.print_plan_first(task, args)  # before any data; --dry-run stops here

# int32 tokens (N, max_length), values 0..9
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.listops.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.listops(
        **tasks.builder_arguments(task, args, splits),  # sequence_length
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
