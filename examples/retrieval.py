"""Retrieval (LRA: does one AAN paper cite the other?) with a two-tower ELM.

    python examples/retrieval.py --data-dir ~/data/lra_release/tsv_data
    python examples/retrieval.py --download  # the LRA release (7.7 GB), once
    python examples/retrieval.py --smoke               # < 1 min, CPU

The AAN pairs cannot be generated: without `--data-dir` or `--download`
the script says which files to put where and exits with an error.
`--data-dir` holds the LRA release's `new_aan_pairs.{train,eval,test}.tsv`.
One ELM encoder, with shared weights, reads both texts; a classifier
reads [u, v, u*v, u-v]. `--smoke` writes a tiny synthetic fixture in the
release's format and reads it through the loader.
"""

import keras

import keras_elm
from keras_elm import tasks

task = tasks.get("retrieval")
parser = tasks.parser(task)  # and --max-length
args = tasks.parse_args(parser, task)

tasks.print_plan_first(task, args)  # before any data; --dry-run stops here

# [int32 (N, L), int32 (N, L)], labels 0/1
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.aan.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.retrieval(
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
