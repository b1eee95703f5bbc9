"""DistributedDataParallel on 2 gloo CPU processes equals 1 process.

Each process trains the same seeded models on its half of every global
batch; if DDP missed the gradient of any weight (one the fast path's
`torch.autograd.Function` closed over instead of taking as an input), the
processes' weights would part from the single-process run.
"""

import os
import socket
import subprocess
import sys
from unittest import mock

import keras
import numpy as np
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("DistributedDataParallel is PyTorch's", allow_module_level=True)

import torch
import torch.multiprocessing

import keras_elm
from keras_elm import torch_distributed
from keras_elm.scan import torch_core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLOBAL_BATCH = 8
STEPS = 3


def _branch_model():
    # Branches, synapses, two hidden layers and a trainable τ_m: every kind
    # of weight the fast path reads.
    return keras.Sequential(
        [
            keras.Input((16, 12)),
            keras_elm.ELM(
                8,
                num_branches=4,
                synapses_per_branch=3,
                mlp_layers=2,
                learn_memory_tau=True,
                use_fast_path=True,
            ),
            keras.layers.Dense(3),
        ]
    )


def _token_model():
    return keras_elm.models.listops(
        sequence_length=32, units=8, mlp_units=16, use_fast_path=True
    )


def _data():
    rng = np.random.default_rng(0)
    return {
        "branches": (
            _branch_model,
            rng.normal(size=(GLOBAL_BATCH, 16, 12)).astype("float32"),
            rng.integers(0, 3, GLOBAL_BATCH),
        ),
        "tokens": (
            _token_model,
            rng.integers(0, 16, (GLOBAL_BATCH, 32)).astype("int32"),
            rng.integers(0, 10, GLOBAL_BATCH),
        ),
    }


def _train(rank, world_size):
    """A few SGD steps of each model on this process's share of the batch.

    Returns:
        `(results, scans)`: `{name: (global losses, trainable weights)}`,
        and how many times the hand-written `_MemoryScan` ran.
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = {}
    with mock.patch.object(
        torch_core._MemoryScan, "apply", wraps=torch_core._MemoryScan.apply
    ) as scans:
        for name, (build, x, y) in _data().items():
            keras.utils.set_random_seed(0)
            model = build()
            net = (
                torch_distributed.distributed_model(model)
                if world_size > 1
                else model
            )
            optimizer = keras.optimizers.SGD(0.05)
            x, y = (
                keras.ops.convert_to_tensor(
                    torch_distributed.shard(part, rank, world_size)
                )
                for part in (x, y)
            )
            losses = []
            for _ in range(STEPS):
                loss = loss_fn(y, net(x, training=True))
                model.zero_grad()
                loss.backward()
                variables = model.trainable_variables
                optimizer.apply([v.value.grad for v in variables], variables)
                total = torch_distributed.all_reduce_sum([loss.item()])[0]
                losses.append(total / world_size)
            results[name] = (losses, [v.numpy() for v in variables])
        return results, scans.call_count


def _worker(rank, world_size, port, out_dir):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    assert torch_distributed.init_process_group() == (rank, world_size)
    try:
        results, scans = _train(rank, world_size)
    finally:
        torch.distributed.destroy_process_group()
    arrays = {"scans": scans}
    for name, (losses, weights) in results.items():
        arrays[f"{name}/losses"] = losses
        arrays.update({f"{name}/{i}": w for i, w in enumerate(weights)})
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **arrays)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_process():
    return _train(rank=0, world_size=1)


def test_two_processes_train_like_one_on_the_whole_batch(
    one_process, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.multiprocessing.spawn(
        _worker, args=(2, _free_port(), str(tmp_path)), nprocs=2
    )
    expected, scans = one_process
    assert scans == STEPS * len(expected)  # The hand-written backward ran.
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npz")
        assert got["scans"] == scans
        for name, (losses, weights) in expected.items():
            np.testing.assert_allclose(
                got[f"{name}/losses"], losses, rtol=1e-5, err_msg=name
            )
            for i, weight in enumerate(weights):
                # Near-zero entries: float32 rounding of the tensor's scale.
                np.testing.assert_allclose(
                    got[f"{name}/{i}"],
                    weight,
                    rtol=1e-5,
                    atol=1e-6 * np.abs(weight).max(),
                    err_msg=f"{name} weight {i}",
                )


def test_every_trainable_weight_is_trained(one_process):
    # Else the equality above would not cover that weight.
    results, _ = one_process
    for name, (build, _, _) in _data().items():
        keras.utils.set_random_seed(0)
        initial = [v.numpy() for v in build().trainable_variables]
        for i, (before, after) in enumerate(zip(initial, results[name][1])):
            assert not np.allclose(before, after), f"{name} weight {i}"


def test_shard_splits_a_global_batch_into_equal_blocks():
    x, y = np.arange(16).reshape(8, 2), np.arange(8)
    rows = [torch_distributed.shard([x, y], rank, 2) for rank in range(2)]
    np.testing.assert_array_equal(np.concatenate([r[0] for r in rows]), x)
    np.testing.assert_array_equal(rows[1][1], [4, 5, 6, 7])
    with pytest.raises(ValueError, match="multiple of 2"):
        torch_distributed.shard(np.arange(5), 0, 2)


def test_all_reduce_sum_of_one_process_is_the_values():
    np.testing.assert_array_equal(
        torch_distributed.all_reduce_sum([1.5, 2.0]), [1.5, 2.0]
    )


def test_any_process_of_one_process_is_its_flag():
    assert torch_distributed.any_process(True) is True
    assert torch_distributed.any_process(False) is False


def test_example_trains_listops_on_two_processes(tmp_path):
    env = {
        **os.environ,
        "KERAS_BACKEND": "torch",
        "OMP_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            os.path.join(ROOT, "examples", "torch_ddp.py"),
            "--task",
            "listops",
            "--smoke",
            "--output-dir",
            str(tmp_path),
            # Both processes stop after their first step, together.
            "--epochs",
            "2",
            "--max-minutes",
            "1e-9",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    assert "data parallel: 2 processes x 2 rows" in result.stdout
    assert result.stdout.count("epoch 1/2: loss") == 1  # Process 0 prints.
    assert "[time limit] 1e-09 min reached after step 1 of epoch 1" in (
        result.stdout
    )
    assert "epoch 2/2" not in result.stdout
    assert "test accuracy" in result.stdout
    assert (tmp_path / "model.keras").exists()
