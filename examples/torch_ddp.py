"""A classification task on several devices: PyTorch DistributedDataParallel.

    export KERAS_BACKEND=torch
    torchrun --nproc_per_node=2 examples/torch_ddp.py --task listops --smoke
    torchrun --nproc_per_node=8 examples/torch_ddp.py --task pathfinder

Keras 3.15's `model.fit` does not distribute on torch, so this is the loop
of Keras's guide "Multi-GPU distributed training with PyTorch": one process
per device (NCCL on GPUs, gloo on CPUs), the same seeded model in each,
wrapped in `DistributedDataParallel`. Each global batch of `--batch-size`
rows (shuffled alike on every process) is split into equal shares, one per
process; DDP averages the gradients, so every process applies the same
update of the task's optimizer (Adam with cosine decay, as in
`examples/<task>.py`), as one process would on the whole batch. The last
partial batch of an epoch is dropped. Process 0 prints and saves the model.
The task's flags are those of `examples/<task>.py` (the default
`--output-dir` is `runs/<task>/ddp`, and its `smoke` folder under
`--smoke`, apart from that example's runs); `--max-minutes` stops
every process at the same step once the time is up, then the model is
evaluated and saved as usual (this loop keeps no backup to resume from).
"""

import argparse
import os
import time

import keras
import numpy as np
import torch
import torch.distributed as dist

from keras_elm import callbacks
from keras_elm import tasks
from keras_elm import torch_distributed

# The classification tasks on arrays (not NeuronIO, whose data streams).
TRAINED_TASKS = sorted(
    name for name, task in tasks.TASKS.items() if task.classification
)


def parse_flags():
    """`--task`, then that task's flags; exits naming what is wrong."""
    choose = argparse.ArgumentParser(add_help=False)
    choose.add_argument("--task", default="listops")
    name = choose.parse_known_args()[0].task
    if name not in TRAINED_TASKS:
        choose.error(
            f"--task {name!r}: this example trains the "
            "classification tasks on arrays, "
            f"{', '.join(TRAINED_TASKS)}"
        )
    task = tasks.get(name)
    parser = tasks.parser(task)  # and the task's own flags
    # Apart from examples/<task>.py's runs (and --smoke in its own folder).
    parser.output_dir_default = os.path.join("runs", name, "ddp")
    parser.add_argument("--task", default="listops", choices=TRAINED_TASKS)
    return task, tasks.parse_args(parser, task)


def take(x, rows):
    """Rows of an array, or of each array of a list, as tensors."""
    if isinstance(x, (list, tuple)):
        return [take(part, rows) for part in x]
    return keras.ops.convert_to_tensor(x[rows])


task, args = parse_flags()
# Before any data: the plan (printed by the first process, RANK 0 of
# torchrun's environment); --dry-run stops every process here.
tasks.print_plan_first(task, args, show=os.environ.get("RANK", "0") == "0")
rank, world_size = torch_distributed.init_process_group()
if args.batch_size % world_size:
    raise SystemExit(
        f"error: --batch-size {args.batch_size} (the global "
        f"batch) must be a multiple of the {world_size} "
        "processes"
    )
if rank > 0:
    dist.barrier()  # Process 0 writes the generated data first.
# task.data, the dataset's splits (downloaded first with --download)
splits = tasks.load_data(task, args)
if rank == 0:
    dist.barrier()
x_train, y_train = splits["train"]
steps = len(y_train) // args.batch_size
if steps == 0:
    raise SystemExit(
        f"error: {len(y_train)} training samples make no global "
        f"batch of --batch-size {args.batch_size}"
    )

keras.utils.set_random_seed(args.seed)  # The same model in every process.
model = task.build_model(
    **tasks.builder_arguments(task, args, splits),
    **tasks.model_overrides(task, args),
)
ddp = torch_distributed.distributed_model(model)
optimizer = tasks.optimizer(task, args, steps)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
if rank == 0:
    tasks.print_plan(task, args, splits, model, steps=steps)
    print(
        f"  data parallel: {world_size} processes x "
        f"{args.batch_size // world_size} rows of each global batch",
        flush=True,
    )


def train_step(x, y):
    """One update on this process's share of a batch; returns its totals."""
    logits = ddp(x, training=True)
    loss = loss_fn(y, logits)
    model.zero_grad()
    loss.backward()  # DDP averages the gradients over the processes here.
    variables = model.trainable_variables
    optimizer.apply([v.value.grad for v in variables], variables)
    return totals(loss, logits, y)


def totals(loss, logits, y):
    """`[loss sum, correct answers, rows]` of a batch."""
    hits = keras.ops.sum(keras.ops.argmax(logits, -1) == y)
    return np.array([loss.item() * len(y), float(hits), len(y)])


def means(local_totals):
    """Loss and accuracy over the rows of all processes."""
    loss_sum, hits, rows = torch_distributed.all_reduce_sum(local_totals)
    return loss_sum / rows, hits / rows


@torch.no_grad()
def evaluate(x, y):
    """Loss and accuracy over a split, each process taking a share of it."""
    rows = np.array_split(np.arange(len(y)), world_size)[rank]
    local_batch = args.batch_size // world_size
    split_totals = np.zeros(3)
    for start in range(0, len(rows), local_batch):
        batch = rows[start : start + local_batch]
        labels = take(y, batch)
        logits = model(take(x, batch), training=False)
        split_totals += totals(loss_fn(labels, logits), logits, labels)
    return means(split_totals)


deadline = (
    None
    if args.max_minutes is None
    else time.perf_counter() + 60 * args.max_minutes
)
out_of_time = False
for epoch in range(args.epochs):
    start = time.perf_counter()
    # The same shuffle in every process, as DistributedSampler.set_epoch.
    order = np.random.default_rng([args.seed, epoch]).permutation(len(y_train))
    epoch_totals = np.zeros(3)
    for step in range(steps):
        batch = order[step * args.batch_size : (step + 1) * args.batch_size]
        rows = torch_distributed.shard(batch, rank, world_size)
        epoch_totals += train_step(take(x_train, rows), take(y_train, rows))
        # Decided together: a process stopping alone would hang the others.
        if deadline is not None and torch_distributed.any_process(
            time.perf_counter() >= deadline
        ):
            out_of_time = True
            break
    loss, accuracy = means(epoch_totals)
    val_loss, val_accuracy = evaluate(*splits["val"])
    if rank == 0:
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {loss:.4f} - accuracy "
            f"{accuracy:.4f} - val_loss {val_loss:.4f} - val_accuracy "
            f"{val_accuracy:.4f} ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    if out_of_time:
        if rank == 0:
            print(
                f"[time limit] {args.max_minutes:g} min reached after step "
                f"{step + 1} of epoch {epoch + 1}: stopping",
                flush=True,
            )
        break

_, test_accuracy = evaluate(*splits["test"])
if rank == 0:
    path = os.path.join(args.output_dir, "model.keras")
    os.makedirs(args.output_dir, exist_ok=True)
    callbacks.save_model(model, path)
    print(
        f"{tasks.synthetic_line(args)}test accuracy "
        f"{100 * test_accuracy:.2f} % (chance {100 * task.chance:.2f} %); "
        f"model saved to {path}",
        flush=True,
    )
# Every process waits for process 0's save, then all leave together: a
# process that tore the group down alone sometimes aborted at exit.
dist.barrier()
dist.destroy_process_group()
