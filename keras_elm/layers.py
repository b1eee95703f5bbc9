"""Small input layers that the model builders put before the ELM.

The models take the data exactly as `keras_elm.data` returns it (`uint8`
images, `uint8` spike counts) and encode it with these layers, so that
datasets stay compact. Their registered Keras names
(`keras_elm>GreyLevelOneHot`, `keras_elm>CastToFloat`) are those of the
models saved when they lived in `keras_elm.models`, which still imports
them.
"""

import keras
from keras import ops

from keras_elm.checks import check_int


@keras.saving.register_keras_serializable(package="keras_elm")
class GreyLevelOneHot(keras.layers.Layer):
    """Flattens `uint8` images into pixel sequences of one-hot grey levels.

    The 256 grey values are binned into `levels` equal bins (`x * levels //
    256`), and each pixel becomes one step of a sequence, row by row, as in
    the Long Range Arena.

    Args:
        levels: number of grey-level bins, an integer in [2, 256]; a
            divisor of 256 is usual (16 for Pathfinder and CIFAR-10, 8 for
            Path-X).
        **kwargs: base layer keyword arguments.

    Returns:
        `(batch, height * width, levels)` one-hot floats.

    Raises:
        TypeError: `levels` is not an integer.
        ValueError: `levels` is outside [2, 256].

    Example:

    >>> import numpy as np
    >>> from keras_elm.layers import GreyLevelOneHot
    >>> layer = GreyLevelOneHot(16)
    >>> tuple(layer(np.zeros((2, 32, 32), "uint8")).shape)
    (2, 1024, 16)
    """

    def __init__(self, levels=16, **kwargs):
        super().__init__(**kwargs)
        self.levels = check_int("levels", levels, 2, maximum=256)

    def compute_output_shape(self, input_shape):
        steps = None
        if all(d is not None for d in input_shape[1:]):
            steps = 1
            for d in input_shape[1:]:
                steps *= d
        return (input_shape[0], steps, self.levels)

    def call(self, images):
        pixels = ops.reshape(
            ops.cast(images, "int32"), (ops.shape(images)[0], -1)
        )
        bins = ops.clip(pixels, 0, 255) * self.levels // 256
        return ops.one_hot(bins, self.levels, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


@keras.saving.register_keras_serializable(package="keras_elm")
class CastToFloat(keras.layers.Layer):
    """Casts compact inputs (such as `uint8` spike counts) to floats.

    Args:
        **kwargs: base layer keyword arguments (`dtype` sets the output's).

    Returns:
        The inputs in the layer's compute dtype.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from keras_elm.layers import CastToFloat
    >>> floats = CastToFloat()(np.ones((1, 3), "uint8"))
    >>> keras.backend.standardize_dtype(floats.dtype)
    'float32'
    """

    def call(self, inputs):
        return ops.cast(inputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
