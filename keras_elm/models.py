"""Model builders for the paper's tasks, with the paper's settings.

Each builder returns an uncompiled `keras.Model` whose defaults are those
of Spieler et al. (ICLR 2024, Appendix B); every choice is an argument. The
models take the data exactly as `keras_elm.data` returns it (`uint8`
images) and encode it themselves, so that datasets stay compact.
"""

import keras

from keras_elm.layer import ELM

# Moved to `keras_elm.layers`; imported from here, the names still work.
from keras_elm.layers import CastToFloat
from keras_elm.layers import GreyLevelOneHot


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

    >>> import keras_elm
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
    93,160 trainable parameters (93,318 with the fixed τ's). On JAX, pass
    `remat_chunk_size` (e.g. 128) to train with memory like √T instead of T.

    Args:
        **kwargs: any argument of `image_classifier` or `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from `uint8 (batch, 128, 128)` to 2
        logits.

    Example:

    >>> import keras_elm
    >>> keras_elm.models.pathfinder_x().count_params()
    93318
    """
    defaults = dict(
        levels=8, memory_tau_max=2e4, trace_tau=150.0, name="elm_pathfinder_x"
    )
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

    >>> import keras_elm
    >>> keras_elm.models.image().count_params()
    96942
    """
    return image_classifier(32, 10, **{"name": "elm_image", **kwargs})


def token_classifier(
    num_tokens,
    num_classes,
    *,
    sequence_length=None,
    units=150,
    mlp_units=None,
    memory_tau_min=1.0,
    memory_tau_max=1000.0,
    trace_tau=5.0,
    mask_padding=True,
    name="elm_token_classifier",
    **elm_kwargs,
):
    """An ELM that reads one token per step and classifies the sequence.

    `int (batch, L)` tokens, 0 the padding -> `ELM(num_tokens=...)`, which
    reads each token as its one-hot vector by a row lookup (the one-hot
    tensor is never built on the fast path) -> the last output into a
    `Dense` classifier (logits).

    Args:
        num_tokens: vocabulary size, padding id 0 included.
        num_classes: number of classes (logits out).
        sequence_length: L, or None for any length.
        units: memory units d_m.
        mlp_units: width of the MLP's hidden layer (`2 * units` if None).
        memory_tau_min: τ_m's lower end (log-spaced at init).
        memory_tau_max: τ_m's upper end.
        trace_tau: τ_s.
        mask_padding: whether token 0 is masked (`ELM(mask_zero=True)`):
            padding steps keep the memory, so the last output is the memory
            after the last real token. The paper does not say; this is our
            default. False reads the padding like any token.
        name: the model's name.
        **elm_kwargs: any other `keras_elm.ELM` argument.

    Returns:
        An uncompiled `keras.Model`.
    """
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = _token_encoder(
        num_tokens,
        units,
        mlp_units,
        memory_tau_min,
        memory_tau_max,
        trace_tau,
        mask_padding,
        None,
        "elm",
        elm_kwargs,
    )(tokens)
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(tokens, logits, name=name)


def _token_encoder(
    num_tokens,
    units,
    mlp_units,
    memory_tau_min,
    memory_tau_max,
    trace_tau,
    mask_padding,
    output_units,
    name,
    elm_kwargs,
):
    return ELM(
        units,
        output_units=output_units,
        num_tokens=num_tokens,
        mask_zero=mask_padding,
        mlp_units=mlp_units,
        memory_tau_min=memory_tau_min,
        memory_tau_max=memory_tau_max,
        trace_tau=trace_tau,
        name=name,
        **elm_kwargs,
    )


def listops(sequence_length=2000, **kwargs):
    """The paper's ListOps model (LRA): the value 0-9 of a nested expression.

    Tokens of `keras_elm.data.listops.VOCABULARY` (16 ids: padding, 10
    digits, 4 operators, "]"; the paper's input dim was 25, its own
    vocabulary), d_m 150, one hidden layer of 300, τ_m log-spaced in
    1-2e3, τ_s 5, the last output into a 10-way classifier: 96,776
    trainable parameters (96,942 with the fixed τ's), the paper's "~100k".

    Args:
        sequence_length: tokens per sequence (2,000 in LRA), or None.
        **kwargs: any argument of `token_classifier` or `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from `int32 (batch, L)` to 10 logits.

    Example:

    >>> import keras_elm
    >>> keras_elm.models.listops().count_params()
    96942
    """
    from keras_elm.data import listops as data

    defaults = dict(memory_tau_max=2e3, name="elm_listops")
    return token_classifier(
        data.VOCABULARY_SIZE,
        data.NUM_CLASSES,
        sequence_length=sequence_length,
        **{**defaults, **kwargs},
    )


def text(sequence_length=4096, **kwargs):
    """The paper's Text model (LRA, IMDB at byte level): is a review positive?

    Bytes + 1 (257 ids, 0 the padding; the paper's input dim was 169, its
    own vocabulary), d_m 150, one hidden layer of 300, τ_m log-spaced in
    1-4e3, τ_s 5, the last output into a 2-way classifier: 168,109
    trainable parameters (168,516 with the fixed τ's); the paper's "~200k".

    Args:
        sequence_length: bytes per review (4,096 in LRA), or None.
        **kwargs: any argument of `token_classifier` or `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from `int32 (batch, L)` to 2 logits.

    Example:

    >>> import keras_elm
    >>> keras_elm.models.text().count_params()
    168516
    """
    from keras_elm.data import text_bytes

    defaults = dict(memory_tau_max=4e3, name="elm_text")
    return token_classifier(
        text_bytes.VOCABULARY_SIZE,
        2,
        sequence_length=sequence_length,
        **{**defaults, **kwargs},
    )


def retrieval(
    sequence_length=4000,
    *,
    latent_units=75,
    classifier_units=75,
    units=150,
    mlp_units=None,
    memory_tau_min=1.0,
    memory_tau_max=4e3,
    trace_tau=5.0,
    mask_padding=True,
    name="elm_retrieval",
    **elm_kwargs,
):
    """The paper's Retrieval model (LRA, AAN): does one paper cite the other?

    A two-tower model: one ELM encoder, with shared weights, reads both
    byte sequences (257 ids, 0 the padding) and its linear readout gives a
    latent `u` (or `v`) of `latent_units` values (the paper's 75). The
    paper does not say how it combined the two; as in LRA and S4, a
    classifier reads `[u, v, u * v, u - v]`: one hidden `relu` layer of
    `classifier_units`, then 2 logits. d_m 150, one hidden layer of 300,
    τ_m log-spaced in 1-4e3, τ_s 5: 201,859 trainable parameters (202,266
    with the fixed τ's); with the paper's input dim of 105 the same model
    has about 156k, its "~150k".

    Args:
        sequence_length: bytes per text (4,000 in LRA), or None.
        latent_units: size of each tower's encoding.
        classifier_units: width of the classifier's hidden layer.
        units: memory units d_m.
        mlp_units: width of the ELM's MLP hidden layer (`2 * units` if None).
        memory_tau_min: τ_m's lower end (log-spaced at init).
        memory_tau_max: τ_m's upper end.
        trace_tau: τ_s.
        mask_padding: mask token 0 (see `token_classifier`).
        name: the model's name.
        **elm_kwargs: any other `keras_elm.ELM` argument.

    Returns:
        An uncompiled `keras.Model` from `[int32 (batch, L), int32 (batch,
        L)]` to 2 logits.

    Example:

    >>> import keras_elm
    >>> keras_elm.models.retrieval().count_params()
    202266
    """
    from keras_elm.data import text_bytes

    first = keras.Input((sequence_length,), dtype="int32", name="tokens_a")
    second = keras.Input((sequence_length,), dtype="int32", name="tokens_b")
    encoder = _token_encoder(
        text_bytes.VOCABULARY_SIZE,
        units,
        mlp_units,
        memory_tau_min,
        memory_tau_max,
        trace_tau,
        mask_padding,
        latent_units,
        "encoder",
        elm_kwargs,
    )
    u, v = encoder(first), encoder(second)
    pair = keras.layers.Concatenate(name="pair")(
        [u, v, keras.layers.Multiply()([u, v]), keras.layers.Subtract()([u, v])]
    )
    hidden = keras.layers.Dense(
        classifier_units, activation="relu", name="classifier_hidden"
    )(pair)
    logits = keras.layers.Dense(2, name="classifier")(hidden)
    return keras.Model([first, second], logits, name=name)


# --- the neuroscience tasks ---------------------------------------------------


def spike_classifier(
    num_classes,
    *,
    num_inputs=700,
    steps=None,
    dt=2.0,
    units=100,
    mlp_units=None,
    lambda_value=5.0,
    memory_tau_min=0.0,
    memory_tau_max=1000.0,
    memory_tau_init_range=(1.0, 150.0),
    memory_tau_spacing="linear",
    dropout=0.5,
    branch=False,
    num_branches=100,
    synapses_per_branch=15,
    routing_seed=0,
    name="elm_spike_classifier",
    **elm_kwargs,
):
    """An ELM that reads binned spike counts and classifies the last output.

    Counts `(batch, T, num_inputs)` (any numeric dtype) -> floats ->
    `Dropout` on the input -> `ELM` (Δt = the bin size in ms) -> `Dense`
    logits. Times are in milliseconds.

    Args:
        num_classes: number of classes (logits out).
        num_inputs: input channels (700 for SHD).
        steps: T, or None for any length.
        dt: Δt, the bin size in ms (2 by default, as `keras_elm.data.shd`).
        units: memory units d_m.
        mlp_units: width of the MLP's hidden layer (`2 * units` if None).
        lambda_value: λ.
        memory_tau_min: τ_m's lower bound (ms).
        memory_tau_max: τ_m's upper bound (ms).
        memory_tau_init_range: where τ_m starts (ms).
        memory_tau_spacing: `"linear"` (the paper) or `"log"`.
        dropout: dropout rate on the input counts.
        branch: whether to build the Branch-ELM: `num_branches` branches of
            `synapses_per_branch` synapses, routed at random.
        num_branches: the Branch-ELM's branches.
        synapses_per_branch: the Branch-ELM's synapses per branch.
        routing_seed: the random routing's seed.
        name: the model's name.
        **elm_kwargs: any other `keras_elm.ELM` argument.

    Returns:
        An uncompiled `keras.Model`.
    """
    counts = keras.Input((steps, num_inputs), name="counts")
    x = CastToFloat(name="to_float")(counts)
    if dropout:
        x = keras.layers.Dropout(dropout, name="input_dropout")(x)
    if branch:
        elm_kwargs = dict(
            num_branches=num_branches,
            synapses_per_branch=synapses_per_branch,
            routing="random",
            routing_seed=routing_seed,
            **elm_kwargs,
        )
    x = ELM(
        units,
        mlp_units=mlp_units,
        lambda_value=lambda_value,
        delta_t=dt,
        memory_tau_min=memory_tau_min,
        memory_tau_max=memory_tau_max,
        memory_tau_init_range=memory_tau_init_range,
        memory_tau_spacing=memory_tau_spacing,
        name="elm",
        **elm_kwargs,
    )(x)
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(counts, logits, name=name)


def shd(steps=500, **kwargs):
    """The paper's SHD model: which of 20 spoken digits (English, German)?

    700 input channels of spike counts in 2 ms bins over 1 s (500 steps),
    input dropout 0.5, d_m 100, one hidden layer of 200, λ 5, Δt 2 ms, τ_m
    evenly spaced in 1-150 ms and bounded to 0-1,000 ms, the last output
    into 20 logits: 183,020 trainable parameters (183,820 with the fixed
    τ's; the ELM's MLP reads 700 + 100 values). With `branch=True`, the
    Branch-ELM (100 branches x 15 synapses, random routing): 63,820
    (67,020 with the fixed τ's and the routing).

    Args:
        steps: T (500 for 1 s at 2 ms), or None.
        **kwargs: any argument of `spike_classifier` (`dt`, `branch`, ...)
            or of `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from counts `(batch, T, 700)` to 20
        logits.

    Example:

    >>> import keras_elm
    >>> keras_elm.models.shd(branch=True).count_params()
    67020
    """
    from keras_elm.data import shd as data

    return spike_classifier(
        data.NUM_CLASSES, steps=steps, **{"name": "elm_shd", **kwargs}
    )


def shd_adding(steps=1000, **kwargs):
    """The paper's SHD-Adding model: the sum of two spoken digits (0-18).

    As `shd`, over two SHD samples one after the other (2 x 500 steps at
    2 ms), into 19 logits: 182,919 trainable parameters (Branch-ELM:
    63,719).

    Args:
        steps: T (1,000 for 2 x 1 s at 2 ms), or None.
        **kwargs: any argument of `spike_classifier` or `keras_elm.ELM`.

    Returns:
        An uncompiled `keras.Model` from counts `(batch, T, 700)` to 19
        logits.

    Example:

    >>> import keras_elm
    >>> keras_elm.models.shd_adding(branch=True).count_params()
    66919
    """
    from keras_elm.data import shd as data

    return spike_classifier(
        data.ADDING_CLASSES, steps=steps, **{"name": "elm_shd_adding", **kwargs}
    )


def neuronio(
    *,
    window=500,
    units=20,
    mlp_units=None,
    lambda_value=10.0,
    memory_tau_min=0.0,
    memory_tau_max=500.0,
    memory_tau_init_range=(1.0, 100.0),
    memory_tau_spacing="linear",
    num_branches=45,
    synapses_per_branch=100,
    routing="neuronio",
    name="elm_neuronio",
    **elm_kwargs,
):
    """The paper's NeuronIO Branch-ELM: spikes and soma of a cortical neuron.

    1,278 input channels (639 excitatory, 639 inhibitory x (-1)), 1 ms
    steps, the Branch-ELM of Table S1: 45 branches x 100 synapses with the
    authors' NeuronIO routing, d_m 20, one hidden layer of 40, λ 10, τ_m
    evenly spaced in 1-100 ms and bounded to 0-500 ms. Every step's memory
    goes through two linear readouts, exactly the neuron's `W_y m + b_y`
    with 2 outputs: `"spike"` (a logit) and `"soma"` (the scaled voltage
    `(min(V, -55) + 67.7) * 0.1`), each `(batch, T, 1)`. 8,002 trainable
    parameters (4,500 of them synaptic weights; 17,067 with the fixed τ's
    and the routing). `keras_elm.data.neuronio.load` yields the matching
    targets.

    Args:
        window: T, the steps of a training window (500), or None.
        units: memory units d_m.
        mlp_units: width of the MLP's hidden layer (`2 * units` if None).
        lambda_value: λ.
        memory_tau_min: τ_m's lower bound (ms).
        memory_tau_max: τ_m's upper bound (ms).
        memory_tau_init_range: where τ_m starts (ms).
        memory_tau_spacing: `"linear"` (the paper) or `"log"`.
        num_branches: dendritic branches.
        synapses_per_branch: synapses on each branch.
        routing: `"neuronio"` (the authors'), `"random"` or indices.
        name: the model's name.
        **elm_kwargs: any other `keras_elm.ELM` argument.

    Returns:
        An uncompiled `keras.Model` from `(batch, T, 1278)` to the outputs
        `{"spike": (batch, T, 1), "soma": (batch, T, 1)}`.

    Example:

    >>> import keras_elm
    >>> model = keras_elm.models.neuronio()
    >>> sorted(model.output_names)
    ['soma', 'spike']
    """
    from keras_elm.data import neuronio as data

    inputs = keras.Input((window, data.NUM_INPUTS), name="spike_trains")
    memory = ELM(
        units,
        mlp_units=mlp_units,
        lambda_value=lambda_value,
        memory_tau_min=memory_tau_min,
        memory_tau_max=memory_tau_max,
        memory_tau_init_range=memory_tau_init_range,
        memory_tau_spacing=memory_tau_spacing,
        num_branches=num_branches,
        synapses_per_branch=synapses_per_branch,
        routing=routing,
        return_sequences=True,
        name="elm",
        **elm_kwargs,
    )(inputs)
    outputs = {
        "spike": keras.layers.Dense(1, name="spike")(memory),
        "soma": keras.layers.Dense(1, name="soma")(memory),
    }
    return keras.Model(inputs, outputs, name=name)
