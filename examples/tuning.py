"""Tunes the ELM's hyperparameters on ListOps or Pathfinder with keras-tuner.

    python examples/tuning.py                                  # ListOps, RandomSearch
    python examples/tuning.py --task pathfinder --tuner hyperband
    python examples/tuning.py --max-length 200 --max-trials 10 # short trees, CPU
    python examples/tuning.py --smoke                          # < 1 min, CPU

The search space is `keras_elm.tuning.ELMHyperModel`'s: d_m, the MLP's
width and depth, the τ_m range, λ, τ_s and the learning rate (the names,
ranges and defaults are listed in `keras_elm.tuning`). The search is
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

from keras_elm import tasks
from keras_elm.tuning import ELMHyperModel

TUNED_TASKS = ("listops", "pathfinder")

choose = argparse.ArgumentParser(add_help=False)
choose.add_argument("--task", choices=TUNED_TASKS, default="listops")
task = tasks.get(choose.parse_known_args()[0].task)

parser = tasks.parser(task, num_samples=10_000)  # and the task's flags
parser.description = (f"{__doc__.splitlines()[0]} Every trial trains "
                      "--epochs epochs (default 10; --max-minutes bounds "
                      "each trial) with the paper's optimizer; "
                      "--learning-rate is the default of the learning_rate "
                      "knob.")
parser.set_defaults(output_dir=os.path.join("runs", f"tuning_{task.name}"),
                    epochs=10)
parser.add_argument("--task", choices=TUNED_TASKS, default="listops")
parser.add_argument("--tuner", choices=("random", "hyperband"), default="random")
parser.add_argument("--max-trials", type=int, default=20,
                    help="RandomSearch's number of configurations")
parser.add_argument("--hyperband-factor", type=int, default=3)
args = tasks.parse_args(parser, task)
if args.smoke:  # Two trials of two epochs (Hyperband: two rounds).
    args.epochs, args.max_trials, args.hyperband_factor = 2, 2, 2

splits = task.load_data(args)
steps = tasks.steps_per_epoch(splits, args)
# Set again in every build: keras-tuner clears the session before each.
distribution = tasks.distribution(args) if args.distribute else None
hypermodel = ELMHyperModel(task, tasks.builder_arguments(task, args, splits),
                           decay_steps=args.epochs * steps, seed=args.seed,
                           distribution=distribution)
hp = keras_tuner.HyperParameters()
hp.Float("learning_rate", 1e-5, 1e-1, sampling="log",
         default=args.learning_rate)
if args.smoke:  # A tiny ELM: narrow the size knobs, tune the rest.
    hp.Int("units", 4, 8, step=4)
    hp.Fixed("mlp_width_factor", 2)
    hp.Fixed("mlp_layers", 1)
common = dict(objective=hypermodel.objective, hyperparameters=hp,
              seed=args.seed, directory=args.output_dir,
              project_name=task.name)
if args.tuner == "random":
    tuner = keras_tuner.RandomSearch(hypermodel, max_trials=args.max_trials,
                                     **common)
else:  # Trials of up to --epochs epochs, continued from their checkpoints.
    tuner = keras_tuner.Hyperband(hypermodel, max_epochs=args.epochs,
                                  factor=args.hyperband_factor, **common)

finished = sum(trial.status == "COMPLETED"
               for trial in tuner.oracle.trials.values())
print(f"{task.description}\n  {args.tuner} search in "
      f"{os.path.abspath(tuner.project_dir)}: {finished} trials already "
      f"finished"
      + (f", data-parallel over {distribution.num_replicas} devices"
         if distribution else "")
      + f"\n{tasks.synthetic_line(args)}", flush=True)
tuner.search(*splits["train"], validation_data=splits["val"],
             epochs=args.epochs, batch_size=args.batch_size,
             callbacks=[tasks.TimeLimit(args.max_minutes)]
             if args.max_minutes else [])

best_trials = [trial for trial in tuner.oracle.get_best_trials(1)
               if trial.score is not None]
if not best_trials:  # keras-tuner logs a failed trial and goes on.
    raise SystemExit("error: no trial finished with a score; the "
                     "tracebacks above say why")
best_trial = best_trials[0]
# Only its weights are restored, not its optimizer: it is only evaluated.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
    best_model = tuner.get_best_models(1)[0]
_, test_accuracy = best_model.evaluate(*splits["test"],
                                       batch_size=args.batch_size, verbose=0)
print(f"best configuration (trial {best_trial.trial_id}, "
      f"{hypermodel.objective.name} {best_trial.score:.4f}):")
for name, value in best_trial.hyperparameters.values.items():
    if not name.startswith("tuner/"):  # Hyperband's own bookkeeping
        print(f"  {name} = {value}")
print(f"test accuracy of its model {100 * test_accuracy:.2f} % (chance "
      f"{100 * task.chance:.2f} %)", flush=True)
