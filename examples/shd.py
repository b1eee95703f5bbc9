"""SHD (Spiking Heidelberg Digits) with an ELM neuron: which spoken digit?

    python examples/shd.py                              # synthetic stand-in
    python examples/shd.py --data-dir ~/data/shd  # shd_train.h5, shd_test.h5
    python examples/shd.py --download                   # fetches SHD, once
    python examples/shd.py --branch --dt 0.01           # Branch-ELM, 10 ms bins
    python examples/shd.py --smoke                      # < 1 min, CPU

SHD cannot be generated. Without `--data-dir` the script trains on
keras_elm's synthetic spiking digits, written once in SHD's h5 layout under
`--output-dir` and labelled SYNTHETIC in every printout. With it, the
folder holds `shd_train.h5` and `shd_test.h5` (https://zenkelab.org/
datasets/, gunzipped). The paper's recipe: Adamax 5e-3, batch 8, 70
epochs, input dropout 0.5, d_m 100, λ 5, Δt = the bin size (2 ms), τ_m
evenly spaced in 1-150 ms and bounded to 0-1,000 ms.
"""

import keras

import keras_elm
from keras_elm import tasks

task = tasks.get("shd")
parser = tasks.parser(task)  # and --dt, --branch
args = tasks.parse_args(parser, task)

tasks.print_plan_first(task, args)  # before any data; --dry-run stops here

# uint8 counts (N, T, 700), labels 0..19
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = keras_elm.data.shd.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)

with tasks.distribution(args):  # all devices with --distribute
    model = keras_elm.models.shd(
        **tasks.builder_arguments(task, args, splits),  # steps, dt, branch
        **tasks.model_overrides(task, args),  # a tiny ELM under --smoke
    )
    model.compile(
        optimizer=tasks.optimizer(task, args, steps),  # Adamax, constant rate
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
