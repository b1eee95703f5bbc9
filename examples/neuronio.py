"""NeuronIO with a Branch-ELM: a cortical neuron's spikes and soma voltage.

    python examples/neuronio.py                          # simulated stand-in
    python examples/neuronio.py --data-dir ~/data/neuronio  # train/ valid/
    python examples/neuronio.py --pretrained 15          # a published neuron
    python examples/neuronio.py --smoke                  # < 1 min, CPU
    python examples/neuronio.py --distribute  # all GPUs, data-parallel

The real NeuronIO set (Beniaguev et al., 2021; about 115 GB of pickles) is
read from `--data-dir`, with `train/`, `valid/` and `test/` folders of
`.p` files (or one flat folder for all three), streamed in random 500 ms
windows. Without it, keras_elm's NumPy neuron simulates a small NeuronIO-
like set in the same pickle layout, once, under `--output-dir`: NOT the
L5PC, and labelled SIMULATED in every printout. The paper's recipe: 0.5
BCE on the spike logit + 0.5 MSE on the soma, after a 150 ms burn-in;
Adam 5e-4 with cosine decay; batch 8; 30 epochs. `--pretrained 15` (or
`best`, or any of keras_elm.pretrained.NEURONIO_MEMORY_SIZES) evaluates a
published neuron instead of training. Either way the script prints the
authors' sliding-window metrics and saves `prediction.png`: predicted
against true voltage and spikes for one test simulation.
"""

import os

import keras

import keras_elm
from keras_elm import callbacks
from keras_elm import flags
from keras_elm import tasks
from keras_elm.data import neuronio

task = tasks.get("neuronio")
parser = tasks.parser(task)  # and --steps-per-epoch
parser.add_argument(
    "--pretrained",
    type=flags.pretrained_neuron,
    default=None,
    help="evaluate a published neuron: 'best' or its d_m, "
    "one of keras_elm.pretrained.NEURONIO_MEMORY_SIZES",
)
args = tasks.parse_args(parser, task)
if args.pretrained and args.distribute:
    parser.error("--distribute is for training; --pretrained only evaluates")

# Before any data: the model, steps, measured time; --dry-run stops here.
tasks.print_plan_first(task, args, training=not args.pretrained)

# Random 500 ms windows streamed from the files (train, val), and the test
# files' folder; simulated once under --output-dir without --data-dir.
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    data = keras_elm.data.neuronio.splits(
        **tasks.data_arguments(task, args, data_dir=data_dir)
    )
if args.pretrained:
    model = keras_elm.pretrained.neuronio_neuron(args.pretrained)

    def predict(x):  # channel 0: the spike logit, 1: the scaled soma
        y = model.predict_on_batch(x)
        return y[..., 0], y[..., 1]
else:
    steps = len(data["train"])
    with tasks.distribution(args):  # all devices with --distribute
        model = keras_elm.models.neuronio(
            **tasks.builder_arguments(task, args, data),
            **tasks.model_overrides(task, args),  # a tiny one under --smoke
        )
        # The paper's loss: 0.5 BCE on the spike logit + 0.5 MSE on the soma.
        model.compile(
            optimizer=tasks.optimizer(task, args, steps),  # Adam, cosine decay
            loss={
                "spike": keras.losses.BinaryCrossentropy(from_logits=True),
                "soma": keras.losses.MeanSquaredError(),
            },
            loss_weights={"spike": 0.5, "soma": 0.5},
        )
    tasks.print_plan(
        task,
        args,
        None,
        model,
        steps=steps,
        data=f"random {neuronio.WINDOW} ms windows from "
        f"{len(data['train'].files)} files",
    )
    model.fit(
        data["train"],
        validation_data=data["val"],
        epochs=args.epochs,
        callbacks=tasks.callbacks(args, steps, monitor="val_loss"),
    )
    callbacks.save_model(model, os.path.join(args.output_dir, "model.keras"))
    predict = model
    if args.distribute:
        # Under a MirroredStrategy, `predict_on_batch` returns every
        # replica's copy of the batch: a clone made outside it evaluates.
        predict = keras.models.clone_model(model)
        predict.set_weights(model.get_weights())

result = neuronio.evaluation_set(data["test"], predict)
try:
    metrics = keras_elm.metrics.neuronio_metrics(*result[:4])
except ValueError as error:  # a test set without (or all) spikes: no ROC
    print(f"no spike metrics: {error}")
    metrics = keras_elm.metrics.soma_metrics(result.soma_true, result.soma_pred)
print(tasks.synthetic_line(args) + keras_elm.metrics.format_table(metrics))
print(
    f"({result.num_kept} of {result.num_simulations} test simulations "
    "kept: the others spike more than 24 times)"
)
tasks.plot_neuronio(
    result, os.path.join(args.output_dir, "prediction.png"), args=args
)  # titled SMOKE RUN / SYNTHETIC DATA
