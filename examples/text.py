"""Text (LRA: IMDB reviews, one byte per step) with an ELM neuron.

    python examples/text.py --data-dir ~/data/aclImdb
    python examples/text.py --download        # fetches IMDB (84 MB), once
    python examples/text.py --smoke                    # < 1 min, CPU

IMDB cannot be generated: without `--data-dir` or `--download` the script
says which files to put where and exits with an error. `--data-dir` is
the unpacked `aclImdb` folder (https://ai.stanford.edu/~amaas/data/
sentiment/) or the data_dir of a prepared tensorflow-datasets
`imdb_reviews`. As in LRA, the test split doubles as the validation
split. `--smoke` writes a tiny synthetic fixture in the aclImdb layout
and reads it through the loader.
"""

import keras

import keras_elm
from keras_elm import tasks

task = tasks.get("text")
parser = tasks.parser(task)  # and --max-length
args = tasks.parse_args(parser, task)

tasks.print_plan_first(task, args)  # before any data; --dry-run stops here

# int32 bytes + 1 (N, max_length), labels 0/1
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.imdb.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.text(
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
