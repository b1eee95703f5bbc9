"""Model builders for the paper's tasks, with the paper's settings.

Each builder returns an uncompiled `keras.Model` whose defaults are those
of Spieler et al. (ICLR 2024, Appendix B); every choice is an argument. The
models take the data exactly as `keras_elm.data` returns it (`uint8`
images) and encode it themselves, so that datasets stay compact.
"""

import keras
from keras import ops

from keras_elm.layer import ELM


@keras.saving.register_keras_serializable(package="keras_elm")
class GreyLevelOneHot(keras.layers.Layer):
    """Flattens `uint8` images into pixel sequences of one-hot grey levels.

    The 256 grey values are binned into `levels` equal bins (`x * levels //
    256`), and each pixel becomes one step of a sequence, row by row, as in
    the Long Range Arena.

    Args:
        levels: number of grey-level bins, a divisor of 256 is usual
            (16 for Pathfinder and CIFAR-10, 8 for Path-X).
        **kwargs: base layer keyword arguments.

    Returns:
        `(batch, height * width, levels)` one-hot floats.

    Example:

    >>> layer = keras_elm.models.GreyLevelOneHot(16)
    >>> layer(np.zeros((2, 32, 32), "uint8")).shape
    (2, 1024, 16)
    """

    def __init__(self, levels=16, **kwargs):
        super().__init__(**kwargs)
        if isinstance(levels, bool) or not isinstance(levels, int) or not (
            2 <= levels <= 256
        ):
            raise ValueError(
                "Argument `levels` must be an integer in [2, 256]. "
                f"Received: levels={levels!r}"
            )
        self.levels = levels

    def compute_output_shape(self, input_shape):
        steps = None
        if all(d is not None for d in input_shape[1:]):
            steps = 1
            for d in input_shape[1:]:
                steps *= d
        return (input_shape[0], steps, self.levels)

    def call(self, images):
        pixels = ops.reshape(ops.cast(images, "int32"), (ops.shape(images)[0], -1))
        bins = ops.clip(pixels, 0, 255) * self.levels // 256
        return ops.one_hot(bins, self.levels, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


def image_classifier(
    image_size,
    num_classes,
    *,
    levels=16,
    units=150,
    mlp_units=None,
    memory_tau_min=1.0,
    memory_tau_max=1000.0,
    trace_tau=5.0,
    name="elm_image_classifier",
    **elm_kwargs,
):
    """An ELM that reads an image pixel by pixel and classifies it.

    `uint8 (batch, S, S)` -> one-hot grey levels, one pixel per step ->
    `ELM` -> the last output into a `Dense` classifier (logits).

    Args:
        image_size: side S of the square images.
        num_classes: number of classes (logits out).
        levels: grey-level bins of the one-hot input.
        units: memory units d_m.
        mlp_units: width of the MLP's hidden layer (`2 * units` if None).
        memory_tau_min: τ_m's lower end (log-spaced at init).
        memory_tau_max: τ_m's upper end.
        trace_tau: τ_s.
        name: the model's name.
        **elm_kwargs: any other `keras_elm.ELM` argument (`mlp_layers`,
            `lambda_value`, `remat_chunk_size`, `use_fast_path`...).

    Returns:
        An uncompiled `keras.Model`.
    """
    images = keras.Input((image_size, image_size), dtype="uint8", name="images")
    x = GreyLevelOneHot(levels, name="grey_levels")(images)
    x = ELM(
        units,
        mlp_units=mlp_units,
        memory_tau_min=memory_tau_min,
        memory_tau_max=memory_tau_max,
        trace_tau=trace_tau,
        name="elm",
        **elm_kwargs,
    )(x)
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(images, logits, name=name)


def pathfinder(image_size=32, **kwargs):
    """The paper's Pathfinder model (LRA, 32 x 32 by default).

    d_m 150, one hidden layer of 300, 16 grey levels one-hot, one pixel per
    step (1,024 steps at 32 px), τ_m log-spaced in 1-1e3, τ_s 5, the last
    output into a 2-way classifier: 95,568 trainable parameters (95,266 in
    the ELM, 302 in the classifier), the paper's "96k"; `count_params()`
    also counts the fixed τ_m and τ_s (95,734).

    Args:
        image_size: 32, 64 or 128.
        **kwargs: any argument of `image_classifier` (`units`, `levels`,
            `memory_tau_max`, ...) or of `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from `uint8 (batch, S, S)` to 2 logits.

    Example:

    >>> model = keras_elm.models.pathfinder()
    >>> model.count_params()
    95734
    """
    return image_classifier(
        image_size, 2, **{"name": f"elm_pathfinder{image_size}", **kwargs}
    )


def pathfinder_x(**kwargs):
    """The paper's Path-X model: Pathfinder at 128 x 128 (16,384 steps).

    d_m 150, one hidden layer of 300, 8 grey levels one-hot, τ_m
    log-spaced in 1-2e4, τ_s 150, the last output into a 2-way classifier:
    93,160 trainable parameters (93,318 with the fixed τ's). On JAX, pass `remat_chunk_size` (e.g. 128) to train
    with memory like √T instead of T.

    Args:
        **kwargs: any argument of `image_classifier` or `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from `uint8 (batch, 128, 128)` to 2
        logits.

    Example:

    >>> keras_elm.models.pathfinder_x().count_params()
    93318
    """
    defaults = dict(levels=8, memory_tau_max=2e4, trace_tau=150.0,
                    name="elm_pathfinder_x")
    return image_classifier(128, 2, **{**defaults, **kwargs})


def image(**kwargs):
    """The paper's sequential grey CIFAR-10 model (LRA "Image").

    d_m 150, one hidden layer of 300, 16 grey levels one-hot, one pixel per
    step (1,024 steps), τ_m log-spaced in 1-1e3, τ_s 5, the last output
    into a 10-way classifier: 96,776 trainable parameters (96,942 with the
    fixed τ's).

    Args:
        **kwargs: any argument of `image_classifier` or `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from `uint8 (batch, 32, 32)` to 10
        logits.

    Example:

    >>> keras_elm.models.image().count_params()
    96942
    """
    return image_classifier(32, 10, **{"name": "elm_image", **kwargs})
