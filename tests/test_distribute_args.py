"""`keras_elm.distribute`: every argument checked before any device work.

In-process and fast; the multi-device runs are in `test_distribute.py`.
"""

import keras
import numpy as np
import pytest

from keras_elm import distribute

BACKEND = keras.backend.backend()


@pytest.mark.parametrize(
    "batch_size, num_devices, name",
    [
        ("8", 2, "batch_size"),
        (8.0, 2, "batch_size"),
        (True, 2, "batch_size"),
        (None, 2, "batch_size"),
        ([8], 2, "batch_size"),
        (8, "2", "num_devices"),
        (8, 2.0, "num_devices"),
        (8, None, "num_devices"),
    ],
)
def test_check_batch_size_rejects_non_ints_naming_them(
    batch_size, num_devices, name
):
    with pytest.raises(TypeError, match=f"`{name}` must be an integer"):
        distribute.check_batch_size(batch_size, num_devices)


@pytest.mark.parametrize(
    "batch_size, num_devices, name",
    [
        (0, 2, "batch_size"),
        (-8, 2, "batch_size"),
        (0, 1, "batch_size"),
        (8, 0, "num_devices"),
        (8, -2, "num_devices"),
    ],
)
def test_check_batch_size_rejects_values_below_one(
    batch_size, num_devices, name
):
    with pytest.raises(ValueError, match=f"`{name}` must be at least 1"):
        distribute.check_batch_size(batch_size, num_devices)


def test_check_batch_size_takes_numpy_ints():
    distribute.check_batch_size(np.int64(8), np.int32(2))
    with pytest.raises(ValueError, match="such as 8 or 10"):
        distribute.check_batch_size(np.int64(9), np.int32(2))


@pytest.mark.parametrize(
    "batch_size, error",
    [
        (0, ValueError),
        (-8, ValueError),
        ("8", TypeError),
        (8.0, TypeError),
        (True, TypeError),
    ],
)
def test_data_parallel_rejects_a_bad_batch_size(batch_size, error):
    # Checked before the backend: the same error on every backend.
    with pytest.raises(error, match="`batch_size` must be"):
        distribute.data_parallel(batch_size=batch_size)


@pytest.mark.parametrize(
    "devices, error, match",
    [
        ([], ValueError, "at least one device, or None"),
        ((), ValueError, "at least one device, or None"),
        (iter([]), ValueError, "at least one device, or None"),
        ("cpu:0", TypeError, "must be a list of devices"),
        (b"cpu:0", TypeError, "must be a list of devices"),
        ({"cpu:0": 1}, TypeError, "must be a list of devices"),
        (2, TypeError, "must be a list of devices"),
        ([None], TypeError, r"devices\[0\]=None"),
        (["cpu:0", 1], TypeError, r"devices\[1\]=1"),
        ([["cpu:0"]], TypeError, r"devices\[0\]"),
        (["cpu:0", "cpu:0"], ValueError, "'cpu:0' twice"),
    ],
)
def test_data_parallel_rejects_bad_devices(devices, error, match):
    with pytest.raises(error, match=match) as info:
        distribute.data_parallel(batch_size=8, devices=devices)
    assert "devices" in str(info.value)


def test_data_parallel_takes_the_devices_it_is_given():
    if BACKEND not in ("jax", "tensorflow"):
        pytest.skip(
            f"data parallelism runs on jax and tensorflow, not {BACKEND}"
        )
    devices = distribute.list_devices()
    parallel = distribute.data_parallel(
        batch_size=len(devices), devices=tuple(devices)
    )
    assert parallel.num_replicas == len(devices)
