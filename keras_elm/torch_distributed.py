"""Data-parallel training of a Keras model on PyTorch, one process per device.

Keras 3.15's `model.fit` does not distribute on the torch backend. A custom
loop does, with `torch.nn.parallel.DistributedDataParallel` (DDP), as in
Keras's guide "Multi-GPU distributed training with PyTorch": every process
builds the same model, takes its share of each global batch, and DDP
averages the gradients over the processes during `loss.backward()`, so
every process applies the same update. `examples/torch_ddp.py` is such a
loop; these are its distributed pieces.

The ELM's torch fast path is a `torch.autograd.Function` that takes every
weight it reads as an input, so autograd accumulates each weight's
gradient and DDP's hooks average it (tested with gloo on 2 CPU
processes: the same losses and weights as one process on the whole batch).

Imports torch: not imported by `import keras_elm`.
"""

import os

import torch
import torch.distributed as dist


def init_process_group():
    """Joins the processes that `torchrun` started.

    One process per device: on CUDA, the process's GPU is `LOCAL_RANK` and
    the backend NCCL; on CPU the backend is gloo. Reads the rendezvous
    (`MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE`) from the
    environment, as `torchrun` sets it.

    Returns:
        `(rank, world_size)`.

    Example (in a script started by `torchrun`, e.g.
    `KERAS_BACKEND=torch torchrun --nproc_per_node=2 train.py`; the
    suite runs it in tests/test_torch_ddp.py):

    >>> rank, world_size = init_process_group()  # doctest: +SKIP
    """
    if torch.cuda.is_available():
        # Before any tensor is made: Keras puts its tensors on this device.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def distributed_model(model):
    """`model` wrapped in `DistributedDataParallel` on this process's device.

    Call the wrapper to train (its backward pass averages the gradients
    over the processes); read and save the weights on `model` itself. DDP
    copies process 0's weights to the others when it wraps, and fails on
    the second step if a trainable weight received no gradient.

    Args:
        model: a built Keras model (a `torch.nn.Module` on this backend).

    Returns:
        A `torch.nn.parallel.DistributedDataParallel`.

    Example (after `init_process_group()`, in a `torchrun` script, as
    `examples/torch_ddp.py` does):

    >>> ddp = distributed_model(model)  # doctest: +SKIP
    >>> loss = loss_fn(y, ddp(x, training=True))  # doctest: +SKIP
    >>> loss.backward()  # doctest: +SKIP
    """
    if torch.cuda.is_available():
        device_ids = [torch.cuda.current_device()]
    else:
        device_ids = None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids
    )


def shard(batch, rank, world_size):
    """This process's share of a global batch: the `rank`-th of equal blocks.

    Equal blocks, so that DDP's average of the processes' mean gradients is
    the mean gradient of the whole batch.

    Args:
        batch: an array (or list of arrays) of the global batch's rows.
        rank: this process's rank.
        world_size: the number of processes.

    Returns:
        The rows `[rank * n, (rank + 1) * n)`, `n = len(batch) / world_size`,
        of each array.

    Example:

    >>> shard(np.arange(8), rank=1, world_size=2)
    array([4, 5, 6, 7])
    """
    if isinstance(batch, (list, tuple)):
        return type(batch)(shard(part, rank, world_size) for part in batch)
    rows = len(batch)
    if rows % world_size:
        raise ValueError(
            f"A global batch of {rows} rows does not split into "
            f"{world_size} equal shares; use a multiple of {world_size}."
        )
    size = rows // world_size
    return batch[rank * size : (rank + 1) * size]


def any_process(flag):
    """Whether `flag` is true in any process: the same answer in every one.

    For decisions all processes must take together, such as stopping on
    time: a process that stopped alone would leave the others waiting for
    it in DDP's gradient reduction.

    Args:
        flag: this process's answer.

    Returns:
        True if some process's `flag` is true.

    Example (alone, the process's own answer; under `torchrun`, the same
    answer in every process, e.g. to stop on time together):

    >>> any_process(False), any_process(True)
    (False, True)
    """
    return bool(all_reduce_sum([1.0 if flag else 0.0])[0] > 0)


def all_reduce_sum(values):
    """Sums numbers over all processes (the numbers themselves if alone).

    Args:
        values: a list or 1-D array of numbers, the same length on every
            process.

    Returns:
        A float64 NumPy array of the sums.

    Example (alone, the numbers themselves):

    >>> loss_sum, correct, count = all_reduce_sum([2.5, 3, 4])
    >>> float(loss_sum), float(correct), float(count)
    (2.5, 3.0, 4.0)
    """
    totals = torch.tensor(values, dtype=torch.float64)
    if dist.is_available() and dist.is_initialized():
        # NCCL reduces CUDA tensors only.
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        totals = totals.to(device)
        dist.all_reduce(totals)
    return totals.cpu().numpy()
