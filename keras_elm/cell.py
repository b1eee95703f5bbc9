"""`ELMCell`: one time step of the Expressive Leaky Memory neuron."""

import math as pymath

import keras
import numpy as np
from keras import ops

from keras_elm import math as elm_math
from keras_elm import routing as elm_routing
from keras_elm.checks import check_int_choice
from keras_elm.checks import check_non_negative_float
from keras_elm.checks import check_positive_float
from keras_elm.checks import check_positive_int
from keras_elm.checks import check_seed
from keras_elm.checks import check_tau_init_range

VERSIONS = (1, 2)


def torch_linear_kernel_initializer(seed=None):
    """PyTorch's `nn.Linear` weight initialisation: U(±1/sqrt(fan_in))."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed
    )


def _builtin_activation_name(activation):
    """The name of a built-in Keras activation (`"relu"`), else None."""
    name = getattr(activation, "__name__", None)
    if not isinstance(name, str):
        return None
    try:
        return name if keras.activations.get(name) is activation else None
    except ValueError:
        return None


def distinct_initializer(initializer, offset):
    """A copy of `initializer` that draws its own values for one weight.

    A Keras 3 initializer returns the same values on every call, so one
    instance shared by several weights would start same-shaped weights equal
    (and others as rescaled copies). The copy's integer seed is shifted by
    `offset`; an unseeded copy draws a new default seed, from Keras's global
    seed. Initializers without a seed (`Zeros`, `Constant`...) and those
    seeded with a `keras.random.SeedGenerator` (new values on every call)
    are returned as they are.

    Args:
        initializer: a Keras initializer, or a plain callable.
        offset: non-negative integer, distinct for each weight of a layer.

    Returns:
        An initializer for one weight.
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    if "seed" not in config:
        return initializer
    seed = config["seed"]
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        config["seed"] = int(seed) + offset
    elif seed is not None:
        return initializer
    return type(initializer).from_config(config)


@keras.saving.register_keras_serializable(package="keras_elm")
class ELMCell(keras.layers.Layer):
    """Cell class for the Expressive Leaky Memory (ELM) neuron.

    One time step of the ELM neuron (Spieler et al., ICLR 2024). The input
    `x_t` is routed onto synapses, filtered by leaky traces, summed per
    dendritic branch into `b_t`; an MLP reads `[b_t, κ_m ⊙ m_{t-1}]` and
    proposes a memory update `Δm_t = 1.7159 tanh(2/3 MLP(·))`; the memory is
    leaky: `m_t = κ_m ⊙ m_{t-1} + λ (1 - κ_m) ⊙ Δm_t` (version 1).

    This class processes one step within a sequence; use `keras_elm.ELM` to
    process whole sequences. The cell's output is the memory `m_t`; the
    linear readout `y_t` lives in the `ELM` layer (`output_units`).

    Traces, decays and the memory state are always computed in float32, also
    under a mixed-precision policy, because a decay such as `exp(-1/1000)`
    rounds to 1.0 in bfloat16. The MLP runs in the policy's compute dtype
    (`mlp_dtype`); the cell's `compute_dtype` is float32, so that
    `keras.layers.RNN` carries the states in float32 as well.

    `keras.layers.RNN` reads `state_size` when it is made. Without
    `num_branches` (or `routing`) the trace size depends on the input's
    channel count, so set `num_branches`, or build the cell first, where
    `keras.layers.RNN(..., return_state=True)` must give the trace state on
    symbolic inputs (`compute_output_shape` leaves it out otherwise).
    `keras_elm.ELM` needs neither.

    Args:
        units: Positive integer, number of memory units `d_m`.
        num_branches: Number of dendritic branches (`num_branch`). `None`
            (default) means one branch per `synapses_per_branch` input
            channels, which is the plain "ELM neuron" when
            `synapses_per_branch=1`. Required when `routing` is set.
        synapses_per_branch: Synapses on each branch
            (`num_synapse_per_branch`). Defaults to 1.
        routing: How synapses read input channels: `None` (synapse `i`
            reads channel `i`; then `num_branches * synapses_per_branch`
            must equal the number of input channels), `"random"` (each
            synapse reads a channel drawn once, uniformly), `"neuronio"`
            (the authors' NeuronIO routing) or a 1-D integer array of
            length `num_branches * synapses_per_branch`.
        routing_seed: Integer seed for `routing="random"`.
        version: `1` for the paper's ELM (a trace per synapse, τ_s) or `2`
            for the later variant (a trace per branch, τ_b, and
            `κ_λ = exp(-Δt λ / τ_m)` in the memory update).
        mlp_layers: Number of hidden layers of the MLP (`mlp_num_layers`).
            Defaults to 1.
        mlp_units: Width of each hidden layer (`mlp_hidden_size`).
            Defaults to `2 * units`.
        mlp_activation: Hidden activation of the MLP, e.g. `"relu"`
            (default) or `"silu"`.
        lambda_value: λ, the scale of the memory update. Defaults to 5.
        delta_t: Δt, the time step in the units of the τ's. Defaults to 1.
        memory_tau_min: τ_min, the smallest memory time constant (>= 0).
        memory_tau_max: τ_max, the largest memory time constant. τ_m stays
            in `[memory_tau_min, memory_tau_max]`.
        memory_tau_init_range: `(low, high)` within those bounds over which
            τ_m starts; None (default) means the bounds themselves, as in
            the authors' code. The paper's SHD setting is bounds (0, 1000)
            and init range (1, 150), evenly spaced.
        memory_tau_spacing: `"log"` (default, the authors' code) or
            `"linear"`: how the initial τ_m are spaced over their range.
        learn_memory_tau: Whether τ_m is trainable. Defaults to False.
        trace_tau: Time constant of the input traces: τ_s (version 1) or τ_b
            (version 2). Defaults to 5. Stored per branch (the
            non-trainable weight `trace_tau`); in version 1 the synapses of
            a branch share it.
        synapse_weight_init: Initial synaptic weight w_s. Defaults to 0.5.
        kernel_initializer: Initializer of the MLP kernels. Defaults to
            PyTorch's `nn.Linear` initialisation, as in the paper's code.
            Each kernel draws from its own copy with its own seed (see
            `distinct_initializer`), so no two kernels start out equal.
        bias_initializer: Initializer of the MLP biases. `None` (default)
            means PyTorch's `nn.Linear` bias initialisation,
            U(±1/sqrt(fan_in)).
        kernel_regularizer: Regularizer of the MLP kernels.
        bias_regularizer: Regularizer of the MLP biases.
        seed: Integer seed of the default initializers.
        **kwargs: Base layer keyword arguments, such as `dtype` and `name`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_elm
    >>> cell = keras_elm.ELMCell(8)
    >>> layer = keras.layers.RNN(cell, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(
        self,
        units,
        num_branches=None,
        synapses_per_branch=1,
        routing=None,
        routing_seed=None,
        version=1,
        mlp_layers=1,
        mlp_units=None,
        mlp_activation="relu",
        lambda_value=5.0,
        delta_t=1.0,
        memory_tau_min=1.0,
        memory_tau_max=1000.0,
        memory_tau_init_range=None,
        memory_tau_spacing="log",
        learn_memory_tau=False,
        trace_tau=5.0,
        synapse_weight_init=0.5,
        kernel_initializer=None,
        bias_initializer=None,
        kernel_regularizer=None,
        bias_regularizer=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        units = check_positive_int("units", units)
        num_branches = check_positive_int(
            "num_branches", num_branches, allow_none=True
        )
        synapses_per_branch = check_positive_int(
            "synapses_per_branch", synapses_per_branch
        )
        mlp_layers = check_positive_int("mlp_layers", mlp_layers)
        mlp_units = check_positive_int("mlp_units", mlp_units, allow_none=True)
        for name, value in (
            ("lambda_value", lambda_value),
            ("delta_t", delta_t),
            ("memory_tau_max", memory_tau_max),
            ("trace_tau", trace_tau),
        ):
            check_positive_float(name, value)
        # w_s = relu(raw): an initial w_s <= 0 would cut the input off for
        # good (relu passes no gradient back to a raw weight <= 0).
        check_positive_float("synapse_weight_init", synapse_weight_init)
        # NumPy's generator rejects a negative seed, but only at build.
        routing_seed = check_seed("routing_seed", routing_seed)
        seed = check_seed("seed", seed, allow_negative=True)
        check_non_negative_float("memory_tau_min", memory_tau_min)
        memory_tau_init_range = check_tau_init_range(
            memory_tau_init_range,
            memory_tau_min,
            memory_tau_max,
            memory_tau_spacing,
        )
        if memory_tau_min >= memory_tau_max:
            raise ValueError(
                "Argument `memory_tau_min` must be smaller than "
                f"`memory_tau_max`. Received: memory_tau_min={memory_tau_min}, "
                f"memory_tau_max={memory_tau_max}"
            )
        version = check_int_choice("version", version, VERSIONS)
        routing = elm_routing.check_routing(
            routing, num_branches, synapses_per_branch
        )
        self.units = units
        self.num_branches = num_branches
        self.synapses_per_branch = synapses_per_branch
        self.routing = routing
        self.routing_seed = routing_seed
        self.version = version
        self.mlp_layers = mlp_layers
        self.mlp_units = mlp_units
        try:
            self.mlp_activation = keras.activations.get(mlp_activation)
        except (ValueError, TypeError) as error:
            raise ValueError(
                "Argument `mlp_activation` must name a Keras activation such "
                f"as 'relu' or 'silu'. Received: mlp_activation="
                f"{mlp_activation!r}"
            ) from error
        # Named once here: the fast path asks for the name at build time,
        # and `serialize` cannot run under torch.compile (it also imports
        # TensorFlow on every backend, seconds at each start).
        self.mlp_activation_name = _builtin_activation_name(self.mlp_activation)
        self.lambda_value = float(lambda_value)
        self.delta_t = float(delta_t)
        self.memory_tau_min = float(memory_tau_min)
        self.memory_tau_max = float(memory_tau_max)
        self.memory_tau_init_range = memory_tau_init_range
        self.memory_tau_spacing = memory_tau_spacing
        self.learn_memory_tau = bool(learn_memory_tau)
        self.trace_tau_value = float(trace_tau)
        self.synapse_weight_init = float(synapse_weight_init)
        self.seed = seed
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or torch_linear_kernel_initializer(seed)
        )
        self.bias_initializer = (
            None
            if bias_initializer is None
            else keras.initializers.get(bias_initializer)
        )
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.input_dim = None
        self.trace_size = self._trace_size(num_branches)

    def _trace_size(self, num_branches):
        if num_branches is None:
            return None
        if self.version == 1:
            return num_branches * self.synapses_per_branch
        return num_branches

    @property
    def state_size(self):
        """`[units, trace_size]`: the memory m and the synapse (v1) or
        branch (v2) trace. `trace_size` is `None` until the cell is built
        when it depends on the input's channel count."""
        return [self.units, self.trace_size]

    @property
    def input_dtype(self):
        """float32: `Layer.__call__` casts every floating argument, the
        states included, to this dtype. The compute dtype would round the
        float32 memory and traces to (b)float16 at every step under a mixed
        policy; the MLP still runs in the compute dtype."""
        return "float32"

    @property
    def compute_dtype(self):
        """float32, the dtype of the memory and traces under any policy.

        `keras.layers.RNN` casts the initial states to its cell's compute
        dtype and carries them through its loop, which JAX and compiled
        TensorFlow need in the dtype the cell returns: float32. The MLP runs
        in `mlp_dtype`, the policy's compute dtype.
        """
        return "float32"

    @property
    def mlp_dtype(self):
        """The dtype the MLP runs in: the dtype policy's compute dtype."""
        return super().compute_dtype

    @property
    def output_size(self):
        return self.units

    @property
    def hidden_units(self):
        """Width of each hidden layer of the MLP."""
        return self.mlp_units if self.mlp_units is not None else 2 * self.units

    @property
    def num_synapses(self):
        return self.resolved_num_branches * self.synapses_per_branch

    @property
    def uses_routing(self):
        return self.routing is not None

    def _resolve_branches(self, input_dim):
        if self.routing is not None:
            return self.num_branches
        if self.num_branches is None:
            if input_dim % self.synapses_per_branch:
                raise ValueError(
                    "Without `routing`, the number of input channels must "
                    "be a multiple of `synapses_per_branch`. Received "
                    f"{input_dim} input channels and "
                    f"synapses_per_branch={self.synapses_per_branch}."
                )
            return input_dim // self.synapses_per_branch
        if self.num_branches * self.synapses_per_branch != input_dim:
            raise ValueError(
                "Without `routing`, `num_branches * synapses_per_branch` "
                "must equal the number of input channels. Received "
                f"num_branches={self.num_branches}, synapses_per_branch="
                f"{self.synapses_per_branch} "
                f"({self.num_branches * self.synapses_per_branch} synapses) "
                f"for {input_dim} input "
                "channels. Set `routing` to connect a different number."
            )
        return self.num_branches

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the inputs to `ELMCell` must be "
                f"defined. Received input_shape={input_shape}"
            )
        self.input_dim = int(input_dim)
        self.resolved_num_branches = self._resolve_branches(self.input_dim)
        self.trace_size = self._trace_size(self.resolved_num_branches)
        num_synapses = self.num_synapses

        if self.uses_routing:
            indices, mask = elm_routing.make_routing(
                self.routing,
                self.input_dim,
                self.resolved_num_branches,
                self.synapses_per_branch,
                seed=self.routing_seed,
            )
            self.routing_indices = self.add_weight(
                shape=(num_synapses,),
                initializer=keras.initializers.Constant(indices),
                dtype="int32",
                trainable=False,
                name="routing_indices",
            )
            self.routing_mask = self.add_weight(
                shape=(num_synapses,),
                initializer=keras.initializers.Constant(mask),
                dtype="float32",
                trainable=False,
                autocast=False,
                name="routing_mask",
            )
        self.synapse_weight_raw = self.add_weight(
            shape=(num_synapses,),
            initializer=keras.initializers.Constant(
                elm_math.inverse_relu_init(self.synapse_weight_init)
            ),
            dtype="float32",
            autocast=False,
            name="synapse_weight_raw",
        )
        # One τ per branch, also in version 1 where each synapse has a trace:
        # the synapses of a branch share τ_s (as in every reference model),
        # which lets the fast path trace branch sums instead of synapses.
        self.trace_tau = self.add_weight(
            shape=(self.resolved_num_branches,),
            initializer=keras.initializers.Constant(self.trace_tau_value),
            dtype="float32",
            trainable=False,
            autocast=False,
            name="trace_tau",
        )
        self.memory_tau_raw = self.add_weight(
            shape=(self.units,),
            initializer=keras.initializers.Constant(
                elm_math.initial_memory_tau_raw(
                    self.units,
                    self.memory_tau_min,
                    self.memory_tau_max,
                    self.memory_tau_init_range,
                    self.memory_tau_spacing,
                )
            ),
            dtype="float32",
            trainable=self.learn_memory_tau,
            autocast=False,
            name="memory_tau_raw",
        )
        self.mlp_kernels = []
        self.mlp_biases = []
        fan_in = self.resolved_num_branches + self.units
        widths = [self.hidden_units] * self.mlp_layers + [self.units]
        for i, width in enumerate(widths):
            self.mlp_kernels.append(
                self.add_weight(
                    shape=(fan_in, width),
                    initializer=distinct_initializer(
                        self.kernel_initializer, self.weight_seed_offset(i)
                    ),
                    regularizer=self.kernel_regularizer,
                    name=f"mlp_kernel_{i}",
                )
            )
            self.mlp_biases.append(
                self.add_weight(
                    shape=(width,),
                    initializer=self._bias_initializer_for(fan_in, i),
                    regularizer=self.bias_regularizer,
                    name=f"mlp_bias_{i}",
                )
            )
            fan_in = width

    def weight_seed_offset(self, layer, bias=False):
        """The seed offset of MLP layer `layer`'s kernel (or bias).

        Every weight of an ELM gets its own offset from `seed` (the MLP
        layers first, then `ELM`'s readout at layer `mlp_layers + 1`), so
        that no two weights start out equal or as rescaled copies.
        """
        return 2 * layer + int(bias)

    def _bias_initializer_for(self, fan_in, index):
        offset = self.weight_seed_offset(index, bias=True)
        if self.bias_initializer is not None:
            return distinct_initializer(self.bias_initializer, offset)
        bound = 1.0 / pymath.sqrt(fan_in)
        seed = None if self.seed is None else self.seed + offset
        return keras.initializers.RandomUniform(-bound, bound, seed=seed)

    def memory_coefficients(self):
        """Float32 `(κ_m, gain)` of the memory update, see `elm_math`."""
        return elm_math.memory_coefficients(
            self.memory_tau_raw,
            self.memory_tau_min,
            self.memory_tau_max,
            self.delta_t,
            self.lambda_value,
            self.version,
        )

    def branch_decay(self):
        """Float32 per-branch trace decay `exp(-Δt / τ)`, `(num_branches,)`."""
        return elm_math.decay(self.trace_tau, self.delta_t)

    def trace_decay(self):
        """Float32 decay of the trace state: κ_s per synapse (version 1,
        shared within a branch) or κ_b per branch (version 2)."""
        decay = self.branch_decay()
        if self.version == 1 and self.synapses_per_branch > 1:
            decay = ops.repeat(decay, self.synapses_per_branch, axis=0)
        return decay

    def synaptic_input(self, inputs):
        """`w_s ⊙ x[routing]` in float32, for any leading shape."""
        x = ops.cast(inputs, "float32")
        if self.uses_routing:
            x = ops.take(x, self.routing_indices, axis=-1) * self.routing_mask
        return x * elm_math.synapse_weight(self.synapse_weight_raw)

    def branch_sum(self, synapses):
        """Sums the last axis (synapses) into branches."""
        shape = ops.shape(synapses)[:-1] + (
            self.resolved_num_branches,
            self.synapses_per_branch,
        )
        return ops.sum(ops.reshape(synapses, shape), axis=-1)

    def memory_update(self, branches, memory, kappa_m, gain):
        """One leaky memory step from the branch input `b_t`.

        Args:
            branches: float32 `b_t`, shape `(batch, num_branches)`.
            memory: float32 `m_{t-1}`, shape `(batch, units)`.
            kappa_m: float32 κ_m, shape `(units,)`.
            gain: float32 gain of the update, shape `(units,)`.

        Returns:
            float32 `m_t`.
        """
        decayed = kappa_m * memory
        dtype = self.mlp_dtype
        hidden = ops.cast(ops.concatenate([branches, decayed], axis=-1), dtype)
        # Cast here, not by autocasting: the cell's compute dtype is float32.
        layers = [
            (ops.cast(kernel, dtype), ops.cast(bias, dtype))
            for kernel, bias in zip(self.mlp_kernels, self.mlp_biases)
        ]
        for kernel, bias in layers[:-1]:
            hidden = self.mlp_activation(ops.matmul(hidden, kernel) + bias)
        hidden = ops.matmul(hidden, layers[-1][0]) + layers[-1][1]
        delta_m = elm_math.scaled_tanh(ops.cast(hidden, "float32"))
        return decayed + gain * delta_m

    def call(self, inputs, states, training=False):
        memory = ops.cast(states[0], "float32")
        trace = ops.cast(states[1], "float32")
        synaptic = self.synaptic_input(inputs)
        decay = self.trace_decay()
        if self.version == 1:
            trace = decay * trace + synaptic
            branches = self.branch_sum(trace)
        else:
            trace = decay * trace + self.branch_sum(synaptic)
            branches = trace
        kappa_m, gain = self.memory_coefficients()
        memory = self.memory_update(branches, memory, kappa_m, gain)
        return memory, [memory, trace]

    def get_initial_state(self, batch_size=None):
        if self.trace_size is None:
            raise ValueError(
                "The trace size of `ELMCell` depends on the input's channel "
                "count; build the cell before asking for its initial state."
            )
        return [
            ops.zeros((batch_size, self.units), dtype="float32"),
            ops.zeros((batch_size, self.trace_size), dtype="float32"),
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "num_branches": self.num_branches,
            "synapses_per_branch": self.synapses_per_branch,
            "routing": self.routing,
            "routing_seed": self.routing_seed,
            "version": self.version,
            "mlp_layers": self.mlp_layers,
            "mlp_units": self.mlp_units,
            "mlp_activation": keras.activations.serialize(self.mlp_activation),
            "lambda_value": self.lambda_value,
            "delta_t": self.delta_t,
            "memory_tau_min": self.memory_tau_min,
            "memory_tau_max": self.memory_tau_max,
            "memory_tau_init_range": (
                None
                if self.memory_tau_init_range is None
                else list(self.memory_tau_init_range)
            ),
            "memory_tau_spacing": self.memory_tau_spacing,
            "learn_memory_tau": self.learn_memory_tau,
            "trace_tau": self.trace_tau_value,
            "synapse_weight_init": self.synapse_weight_init,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": (
                None
                if self.bias_initializer is None
                else keras.initializers.serialize(self.bias_initializer)
            ),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
