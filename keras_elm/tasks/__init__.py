"""The paper's tasks in one registry, and the plumbing the examples share.

One job a module, every name reachable as `keras_elm.tasks.<name>`:

- `registry`: `Task`, `TASKS`, `get`: which data (the dataset's
  `splits`), builder, loss, optimizer and recipe each task has;
- `training`: the optimizer and `model.compile` keywords of a task
  (`compile_arguments`), the callbacks, `distribution` and
  `trim_to_devices` for `--distribute`, `MissingDataError`, and the
  data's keywords from the flags (`data_arguments`, `load_data`), the
  folder to read (`fetch_data`: downloaded with `--download`);
- `cli`: the examples' flags (`parser`, `parse_args`), and the
  builder's keywords (`builder_arguments`, `model_overrides`); argparse
  is parsed here only;
- `planning`: the plan printed before any data are made or fetched
  (`print_plan_first`; `--dry-run` stops there), with measured estimates;
  `data_plans` its data part (`data_plan`, `measure_generation`);
- `reporting`: the run's summary once the data are there (`print_plan`),
  the report, the NeuronIO figure.

`registry` and `training` are imported with the package; `cli`, `planning` and
`reporting` when a name of theirs is first used, so that
`keras_elm.tuning`, which needs only the first two, parses no flags and
draws nothing.

Example:

```python
import keras_elm
from keras_elm import tasks

task = tasks.get("listops")
assert task.data is keras_elm.data.listops.splits
assert task.build_model is keras_elm.models.listops
```
"""

import importlib

from keras_elm import distribute  # noqa: F401 (tasks.distribute, as before)
from keras_elm import models  # noqa: F401
from keras_elm.callbacks import Backup  # noqa: F401 (lived here before)
from keras_elm.callbacks import BestModel  # noqa: F401
from keras_elm.callbacks import StepTimer  # noqa: F401
from keras_elm.callbacks import StopOnInterrupt  # noqa: F401
from keras_elm.callbacks import StopOnNaN  # noqa: F401
from keras_elm.callbacks import TimeLimit  # noqa: F401
from keras_elm.callbacks import _check_finite  # noqa: F401
from keras_elm.callbacks import save_model  # noqa: F401
from keras_elm.data import files  # noqa: F401
from keras_elm.tasks.registry import SMOKE  # noqa: F401
from keras_elm.tasks.registry import SMOKE_ELM  # noqa: F401
from keras_elm.tasks.registry import TASKS  # noqa: F401
from keras_elm.tasks.registry import Task  # noqa: F401
from keras_elm.tasks.registry import get  # noqa: F401
from keras_elm.tasks.training import LRA_DATASETS  # noqa: F401
from keras_elm.tasks.training import OPTIMIZERS  # noqa: F401
from keras_elm.tasks.training import RESUMABLE_FLAGS  # noqa: F401
from keras_elm.tasks.training import MissingDataError  # noqa: F401
from keras_elm.tasks.training import _trim  # noqa: F401
from keras_elm.tasks.training import callbacks  # noqa: F401
from keras_elm.tasks.training import compile_arguments  # noqa: F401
from keras_elm.tasks.training import compile_model  # noqa: F401
from keras_elm.tasks.training import data_arguments  # noqa: F401
from keras_elm.tasks.training import dataset_name  # noqa: F401
from keras_elm.tasks.training import default_compile_kwargs  # noqa: F401
from keras_elm.tasks.training import default_download_dir  # noqa: F401
from keras_elm.tasks.training import distribution  # noqa: F401
from keras_elm.tasks.training import even_over_devices  # noqa: F401
from keras_elm.tasks.training import exit_on_missing_data  # noqa: F401
from keras_elm.tasks.training import fetch_data  # noqa: F401
from keras_elm.tasks.training import load_data  # noqa: F401
from keras_elm.tasks.training import optimizer  # noqa: F401
from keras_elm.tasks.training import run_config  # noqa: F401
from keras_elm.tasks.training import steps_per_epoch  # noqa: F401
from keras_elm.tasks.training import task_optimizer  # noqa: F401
from keras_elm.tasks.training import trim_to_devices  # noqa: F401

# Imported when first used (module `__getattr__`): name -> module.
_LAZY = {
    **dict.fromkeys(
        (
            "parser",
            "parse_args",
            "check_output_dir",
            "builder_arguments",
            "model_overrides",
        ),
        "keras_elm.tasks.cli",
    ),
    **dict.fromkeys(
        (
            "print_plan",
            "parameter_counts",
            "run_labels",
            "synthetic_line",
            "majority_accuracy",
            "report",
            "plot_neuronio",
        ),
        "keras_elm.tasks.reporting",
    ),
    **dict.fromkeys(
        (
            "Plan",
            "make_plan",
            "print_plan_first",
            "measure_steps",
            "suggestions",
        ),
        "keras_elm.tasks.planning",
    ),
    **dict.fromkeys(
        ("data_plan", "measure_generation"), "keras_elm.tasks.data_plans"
    ),
    # The flag types and checks lived here before `keras_elm.flags`.
    **dict.fromkeys(
        (
            "positive_int",
            "positive_float",
            "non_negative_int",
            "_check_listops",
            "_check_neuronio",
            "_check_pathfinder",
            "_check_shd",
            "_min_length",
        ),
        "keras_elm.flags",
    ),
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
