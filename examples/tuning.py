"""Tunes the ELM's hyperparameters on ListOps or Pathfinder with keras-tuner.

    python examples/tuning.py  # ListOps, RandomSearch
    python examples/tuning.py --task pathfinder --tuner hyperband
    python examples/tuning.py --max-length 200 --max-trials 10  # CPU
    python examples/tuning.py --smoke                          # < 1 min, CPU

The search space is `keras_elm.tuning.ELMHyperModel`'s: d_m, the MLP's
width and depth, the τ_m range, λ, τ_s and the learning rate (the names,
ranges and defaults are listed in `keras_elm.tuning`); `--learning-rate`
fixes the learning rate of every trial instead of tuning it. `--smoke`
changes only the defaults (two trials of two epochs on a tiny ELM): flags
given, such as `--max-trials`, keep their values. The search is
written to `--output-dir`; rerun the same command after an interruption
and it goes on from there, without repeating a finished trial. At the end
it prints the best configuration, its validation score, and the test
accuracy of its model. Needs keras-tuner (`pip install
"keras-elm[tuning]"`).
"""

import argparse
import os
import warnings

import keras_tuner

import keras_elm.tuning
from keras_elm import callbacks
from keras_elm import tasks
from keras_elm.tuning import ELMHyperModel

TUNED_TASKS = ("listops", "pathfinder")

choose = argparse.ArgumentParser(add_help=False)
choose.add_argument("--task", choices=TUNED_TASKS, default="listops")
task = tasks.get(choose.parse_known_args()[0].task)

parser = keras_elm.tuning.parser(task)  # the task's flags and the search's
parser.add_argument("--task", choices=TUNED_TASKS, default="listops")
parser.description = __doc__.splitlines()[0] + " " + parser.description
args = keras_elm.tuning.parse_args(parser, task)

# Before any data: the paper's model, a trial's steps and measured time;
# --dry-run stops here.
tasks.print_plan_first(
    task, args, trials=args.max_trials if args.tuner == "random" else None
)

# The dataset's splits (`keras_elm.data.listops.splits` or
# `keras_elm.data.pathfinder.splits`), from the flags.
with tasks.exit_on_missing_data(task, args):  # "error: ..." names the files
    data_dir = tasks.fetch_data(task, args)  # downloads with --download
    splits = task.data(**tasks.data_arguments(task, args, data_dir=data_dir))
splits = tasks.trim_to_devices(splits, args.distribute)  # whole batches
steps = tasks.steps_per_epoch(splits, args)
# Set again in every build: keras-tuner clears the session before each.
distribution = tasks.distribution(args) if args.distribute else None
hypermodel = ELMHyperModel(
    task,
    tasks.builder_arguments(task, args, splits),
    decay_steps=args.epochs * steps,
    seed=args.seed,
    distribution=distribution,
)
# Fixed knobs: the learning rate if --learning-rate is given, a tiny ELM
# under --smoke; the tuner declares the rest (`keras_elm.tuning`'s table).
hp = keras_elm.tuning.search_hyperparameters(args)
common = dict(
    objective=hypermodel.objective,
    hyperparameters=hp,
    seed=args.seed,
    directory=args.output_dir,
    project_name=task.name,
)
if args.tuner == "random":
    tuner = keras_tuner.RandomSearch(
        hypermodel, max_trials=args.max_trials, **common
    )
else:  # Trials of up to --epochs epochs, continued from their checkpoints.
    tuner = keras_tuner.Hyperband(
        hypermodel,
        max_epochs=args.epochs,
        factor=args.hyperband_factor,
        **common,
    )

finished = sum(
    trial.status == "COMPLETED" for trial in tuner.oracle.trials.values()
)
print(
    f"{task.description}\n  {args.tuner} search in "
    f"{os.path.abspath(tuner.project_dir)}: {finished} trials already "
    f"finished"
    + (
        f", data-parallel over {distribution.num_replicas} devices"
        if distribution
        else ""
    )
    + (
        "\n  learning_rate fixed at "
        f"{args.learning_rate:g} by --learning-rate (omit it to tune it)"
        if args.learning_rate is not None
        else ""
    )
    + f"\n{tasks.synthetic_line(args)}",
    flush=True,
)
tuner.search(
    *splits["train"],
    validation_data=splits["val"],
    epochs=args.epochs,
    batch_size=args.batch_size,
    # Ctrl-C stops at the end of a step and exits with status 130.
    callbacks=[callbacks.StopOnInterrupt()]
    + ([callbacks.TimeLimit(args.max_minutes)] if args.max_minutes else []),
)

best_trials = [
    trial
    for trial in tuner.oracle.get_best_trials(1)
    if trial.score is not None
]
if not best_trials:  # keras-tuner logs a failed trial and goes on.
    raise SystemExit(
        "error: no trial finished with a score; the tracebacks above say why"
    )
best_trial = best_trials[0]
# Only its weights are restored, not its optimizer: it is only evaluated.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
    best_model = tuner.get_best_models(1)[0]
_, test_accuracy = best_model.evaluate(
    *splits["test"], batch_size=args.batch_size, verbose=0
)
print(
    f"best configuration (trial {best_trial.trial_id}, "
    f"{hypermodel.objective.name} {best_trial.score:.4f}):"
)
for name, value in best_trial.hyperparameters.values.items():
    if not name.startswith("tuner/"):  # Hyperband's own bookkeeping
        print(f"  {name} = {value}")
print(
    f"test accuracy of its model {100 * test_accuracy:.2f} % (chance "
    f"{100 * task.chance:.2f} %)",
    flush=True,
)
