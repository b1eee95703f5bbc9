"""Data-parallel training on several devices, on JAX and TensorFlow.

Build and compile the model inside `data_parallel()`, then call
`model.fit` as usual: every device holds a copy of the weights, each
batch is split evenly over the devices, and the gradients are averaged,
so a run gives the same numbers as on one device (up to the order of
float sums). The batch size passed to `fit` is the global one.

On JAX this is `keras.distribution.DataParallel`, on TensorFlow
`tf.distribute.MirroredStrategy`. The ELM's fast path runs under both,
TensorFlow's XLA-compiled loops included (`tests/test_distribute.py`).
Keras 3's `model.fit` has no data parallelism on torch: the torch backend
has its own loop, `examples/torch_ddp.py`.
"""

import collections.abc

import keras

from keras_elm.checks import check_int as _check_int

TORCH_MESSAGE = (
    "Keras 3's `model.fit` has no data parallelism on the torch backend "
    "(keras.distribution supports JAX only, tf.distribute TensorFlow only). "
    "For several GPUs with torch, use the DistributedDataParallel training "
    'loop in examples/torch_ddp.py (README, section "Several devices"), '
    "or run on JAX or TensorFlow (KERAS_BACKEND=jax)."
)


def _unsupported(backend):
    if backend == "torch":
        return TORCH_MESSAGE
    return (
        f"There is no data-parallel training on the {backend!r} backend; "
        "use JAX or TensorFlow."
    )


def list_devices():
    """The devices that `data_parallel` splits the batch over by default.

    Returns:
        JAX: `keras.distribution.list_devices()` (the GPUs or TPUs, else
        the CPUs). TensorFlow: the names of the logical GPUs, else of the
        logical CPUs (one, unless split with
        `tf.config.set_logical_device_configuration`).

    Raises:
        ValueError: on torch and every other backend.

    Example:

    ```python
    import keras

    import keras_elm

    if keras.backend.backend() in ("jax", "tensorflow"):
        assert len(keras_elm.distribute.list_devices()) >= 1
    ```
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return keras.distribution.list_devices()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU")
        devices = devices or tf.config.list_logical_devices("CPU")
        return [device.name for device in devices]
    raise ValueError(_unsupported(backend))


def check_batch_size(batch_size, num_devices):
    """Raises unless `batch_size` divides evenly over `num_devices` devices.

    Args:
        batch_size: the global batch size (`--batch-size` of the examples).
        num_devices: the number of devices the batch is split over.

    Raises:
        TypeError: an argument is not an int.
        ValueError: an argument is below 1, or `batch_size` does not divide
            by `num_devices`.

    Example:

    >>> import keras_elm
    >>> keras_elm.distribute.check_batch_size(8, 2)
    >>> keras_elm.distribute.check_batch_size(9, 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Data-parallel training splits every batch evenly over the ...
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    num_devices = _check_int("num_devices", num_devices, 1)
    if batch_size % num_devices == 0:
        return
    lower = batch_size // num_devices * num_devices
    choices = f"{lower} or {lower + num_devices}" if lower else num_devices
    raise ValueError(
        f"Data-parallel training splits every batch evenly over the "
        f"{num_devices} devices, so the global batch size must divide by "
        f"{num_devices}. Received batch_size={batch_size} (--batch-size in "
        f"the examples). Pass a multiple of {num_devices}, such as {choices}."
    )


def _check_devices(devices):
    """`devices` as a non-empty list without repeats, or raises."""
    # One device alone is not a list of them (TensorFlow's LogicalDevice
    # is a tuple of two strings).
    if (
        isinstance(devices, (str, bytes, collections.abc.Mapping))
        or _is_device(devices)
        or not isinstance(devices, collections.abc.Iterable)
    ):
        raise TypeError(
            f"Argument `devices` must be a list of devices (such as the "
            f"entries of `list_devices()`), or None for all of them. "
            f"Received: devices={devices!r} of type {type(devices).__name__}"
        )
    received, devices = devices, list(devices)
    if not devices:
        raise ValueError(
            f"Argument `devices` is empty: give at least one device, or None "
            f"for all of them (`list_devices()`). Received: "
            f"devices={received!r}"
        )
    for i, device in enumerate(devices):
        if not _is_device(device):
            raise TypeError(
                f"Argument `devices` must hold devices: strings such as the "
                f"entries of `list_devices()`. Received: devices[{i}]="
                f"{device!r} of type {type(device).__name__}"
            )
        if device in devices[:i]:
            raise ValueError(
                f"Argument `devices` names {device!r} twice; give each "
                f"device once. Received: devices={devices!r}"
            )
    return devices


def _is_device(device):
    """A device name, or a device object of the backend."""
    if isinstance(device, str):
        return True
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return isinstance(device, jax.Device)
    if backend == "tensorflow":
        import tensorflow as tf

        return isinstance(device, tf.config.LogicalDevice)
    return False


def data_parallel(batch_size=None, devices=None):
    """Data-parallel training over several devices, as a context manager.

    Build and compile the model inside the `with` block; `model.fit` may
    be called inside or after it, with the global batch size.

    - JAX: sets a `keras.distribution.DataParallel` on entry, which STAYS
      IN FORCE after the block, for every model built and every `fit`
      until `keras.distribution.set_distribution(None)`.
    - TensorFlow: enters a `tf.distribute.MirroredStrategy`'s scope on
      entry and leaves it on exit; the model keeps its strategy for `fit`,
      `evaluate` and `predict`.

    The last, smaller batch of each split must divide by the device count
    too (JAX raises an `IndivisibleError` when it arrives, and Keras's
    `evaluate` under a `MirroredStrategy` fails on an uneven split), so
    give the train, validation and test splits sizes that divide by it.
    `keras.backend.clear_session()` (which keras-tuner calls before each
    build) undoes both; call `activate()` after it.

    Args:
        batch_size: Optional global batch size, checked to divide by the
            number of devices.
        devices: Optional non-empty list of devices, each once; None (the
            default) for all of `list_devices()` (JAX: strings like
            `"gpu:0"`; TensorFlow: names like `"/device:GPU:0"`).

    Returns:
        A context manager with `num_replicas` (the number of devices) and
        `distribution` (JAX's `keras.distribution.DataParallel`) or
        `strategy` (TensorFlow's `MirroredStrategy`).

    Raises:
        TypeError: `batch_size` is not an int, or `devices` not a list of
            devices.
        ValueError: `batch_size` is below 1 or does not divide by the
            number of devices; `devices` is empty or repeats a device; and
            on torch, whose `model.fit` has no data parallelism in Keras 3
            (see `examples/torch_ddp.py`).

    Example:

    ```python
    import keras
    import numpy as np

    import keras_elm

    x, y = np.zeros((8, 3), "float32"), np.zeros(8, "int32")
    if keras.backend.backend() != "torch":  # torch: examples/torch_ddp.py
        with keras_elm.distribute.data_parallel(batch_size=8):
            model = keras.Sequential(
                [keras.Input((3,)), keras.layers.Dense(2)]
            )
            model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, verbose=0)
        if keras.backend.backend() == "jax":
            keras.distribution.set_distribution(None)  # it stays otherwise
    ```
    """
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, 1)
    if devices is not None:
        devices = _check_devices(devices)
    backend = keras.backend.backend()
    if backend == "jax":
        return _JaxDataParallel(batch_size, devices)
    if backend == "tensorflow":
        return _MirroredDataParallel(batch_size, devices)
    raise ValueError(_unsupported(backend))


class _JaxDataParallel:
    """`keras.distribution.DataParallel`, set on entry and by `activate()`."""

    def __init__(self, batch_size, devices):
        devices = list_devices() if devices is None else devices
        if batch_size is not None:
            check_batch_size(batch_size, len(devices))
        self.num_replicas = len(devices)
        self.distribution = keras.distribution.DataParallel(devices=devices)

    def activate(self):
        """Sets the distribution (again, after `clear_session`)."""
        keras.distribution.set_distribution(self.distribution)

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc_info):
        # Left in force on purpose: `fit` after the block is distributed.
        return None


class _MirroredDataParallel:
    """`tf.distribute.MirroredStrategy`, its scope entered by `with`."""

    def __init__(self, batch_size, devices):
        import tensorflow as tf

        devices = list_devices() if devices is None else devices
        if batch_size is not None:
            check_batch_size(batch_size, len(devices))
        self.strategy = tf.distribute.MirroredStrategy(devices)
        self.num_replicas = self.strategy.num_replicas_in_sync
        self._scope = None

    def _in_scope(self):
        import tensorflow as tf

        return tf.distribute.get_strategy() is self.strategy

    def activate(self):
        """Enters the strategy's scope, unless it is already current.

        `keras.backend.clear_session()` resets TensorFlow's default graph,
        which holds the scope, so the scope is then entered again.
        """
        if not self._in_scope():
            self._scope = self.strategy.scope()
            self._scope.__enter__()

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc_info):
        # A scope that `clear_session` dropped has nothing left to leave.
        if self._scope is not None and self._in_scope():
            self._scope.__exit__(*exc_info)
        self._scope = None
