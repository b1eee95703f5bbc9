"""`ELM`: the Expressive Leaky Memory neuron as a Keras recurrent layer."""

import math as pymath

import keras
from keras import ops

from keras_elm import layer_inputs
from keras_elm import scan
from keras_elm.cell import ELMCell
from keras_elm.cell import distinct_initializer
from keras_elm.cell import torch_linear_kernel_initializer
from keras_elm.checks import check_auto_or_bool
from keras_elm.checks import check_positive_int


@keras.saving.register_keras_serializable(package="keras_elm")
class ELM(keras.layers.RNN):
    """Expressive Leaky Memory neuron layer (Spieler et al., ICLR 2024).

    A recurrent layer in the manner of `keras.layers.LSTM`: it runs
    `keras_elm.ELMCell` over a sequence and supports `return_sequences`,
    `return_state`, `go_backwards`, `stateful`, `unroll`, masking and
    `keras.layers.Bidirectional`. By default the output is the memory state
    `m_t` (`units` values); with `output_units` set it is the neuron's linear
    readout `y_t = W_y m_t + b_y`.

    The states are `[m, trace]`: the memory `m` (`units` values) and the
    synapse trace `s` (version 1, one value per synapse) or branch trace `b`
    (version 2, one value per branch). They are float32 under every dtype
    policy. All states start at zero.

    Args:
        units: Positive integer, number of memory units `d_m`.
        output_units: Optional positive integer, size of the linear readout
            `y_t = W_y m_t + b_y` (`num_output`). `None` (default) outputs
            `m_t` itself.
        num_branches: Number of dendritic branches. See `ELMCell`.
        synapses_per_branch: Synapses on each branch. See `ELMCell`.
        routing: Input-to-synapse routing: `None`, `"random"`, `"neuronio"`
            or an index array. See `ELMCell`.
        routing_seed: Integer seed for `routing="random"`.
        version: `1` (the paper's ELM) or `2` (branch traces and κ_λ).
        mlp_layers: Number of hidden layers of the MLP.
        mlp_units: Width of the MLP's hidden layers; defaults to `2 * units`.
        mlp_activation: Hidden activation of the MLP (`"relu"`, `"silu"`...).
        lambda_value: λ, the scale of the memory update.
        delta_t: Δt, the time step.
        memory_tau_min: τ_min of the memory time constants.
        memory_tau_max: τ_max of the memory time constants.
        memory_tau_init_range: `(low, high)` over which τ_m starts (None:
            the bounds). See `ELMCell`.
        memory_tau_spacing: `"log"` (default) or `"linear"` initial τ_m.
        learn_memory_tau: Whether τ_m is trainable.
        trace_tau: τ_s (version 1) or τ_b (version 2).
        synapse_weight_init: Initial synaptic weight w_s.
        kernel_initializer: Initializer of the MLP kernels (a copy with its
            own seed for each kernel).
        bias_initializer: Initializer of the MLP biases (likewise).
        kernel_regularizer: Regularizer of the MLP kernels.
        bias_regularizer: Regularizer of the MLP biases.
        seed: Integer seed of the default initializers.
        output_kernel_initializer: Initializer of `W_y`; `None` (default)
            means PyTorch's `nn.Linear` initialisation, seeded from `seed`.
        output_bias_initializer: Initializer of `b_y`; `None` (default)
            means PyTorch's `nn.Linear` bias initialisation.
        return_sequences: Whether to return the whole output sequence or
            only the last output. Defaults to False.
        return_state: Whether to return the final states `[m, trace]` after
            the output. Defaults to False.
        go_backwards: Whether to process the sequence backwards and return
            the reversed sequence. Defaults to False.
        stateful: Whether the last states of each batch are the initial
            states of the next batch. Defaults to False.
        unroll: Whether to unroll the time loop. Defaults to False.
        zero_output_for_mask: Whether masked steps output zeros instead of
            repeating the previous output. Defaults to False.
        use_fast_path: `"auto"` (default) runs the backend's fast path
            (`keras_elm.scan`) where it applies and the generic
            `keras.ops` loop otherwise; `True` raises a `ValueError` where
            no fast path applies; `False` always runs the generic loop. The
            fast path hoists everything that does not depend on the memory
            out of the time loop and gives the same numbers.
        num_tokens: Optional positive integer. If set, the layer reads
            integer tokens `(batch, timesteps)` in `[0, num_tokens)` and
            treats each as its one-hot vector of `num_tokens` features,
            exactly as if `ops.one_hot(tokens, num_tokens)` were passed
            (a token outside that range reads as all zeros and is never
            padding; an int64 token is checked before it is cast, so
            `2**32 + 3` does not wrap to 3 nor `2**40` to 0). For a large
            vocabulary (`num_tokens >= mlp_units / 2`, see
            `uses_token_lookup`) the fast path never builds the one-hot
            tensor: `one_hot(x) @ W` is the row `W[x]`, so it looks the
            MLP's input rows up and takes the synapse trace after them.
            That needs one `trace_tau` shared by all branches, which is how
            the layer builds it: do not assign per-branch values to its
            `trace_tau` weight. A small vocabulary is one-hot encoded, which
            measured faster there (`benchmarks/bench_tokens.py`). With
            `return_state` or `stateful`, the final synapse trace is
            computed from the one-hot inputs.
        mask_zero: With `num_tokens`: whether token 0 is padding, as in
            `keras.layers.Embedding`. Padding steps are then masked (they
            keep the states; combined with any `mask` passed), and the
            mask propagates with `return_sequences`. Defaults to False.
        remat_chunk_size: JAX only. If set, the fast path recomputes the
            forward pass in chunks of this many steps during the backward
            pass, so training memory grows like `T / chunk + chunk` instead
            of `T` (for very long sequences such as Path-X).
        **kwargs: Base layer keyword arguments, such as `dtype` and `name`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`, or integer
            tokens `(batch, timesteps)` when `num_tokens` is set.
        initial_state: Optional list `[m, trace]` of initial states.
        mask: Optional boolean tensor `(batch, timesteps)` (or `(batch,
            timesteps, 1)`); `False` steps are skipped: they keep the
            states and output the memory carried so far (`m_0` before a
            sample's first step), and their input values, NaN included,
            never reach a result.
        training: Python boolean, training or inference mode.

    Returns:
        The output `(batch, units_out)`, or `(batch, timesteps, units_out)`
        with `return_sequences=True`, where `units_out` is `output_units` or
        `units`; followed by the final states with `return_state=True`.

    Example:

    >>> import numpy as np
    >>> import keras_elm
    >>> layer = keras_elm.ELM(units=16, output_units=2, return_sequences=True)
    >>> tuple(layer(np.zeros((4, 10, 8), "float32")).shape)
    (4, 10, 2)
    """

    def __init__(
        self,
        units,
        output_units=None,
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
        output_kernel_initializer=None,
        output_bias_initializer=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        use_fast_path="auto",
        remat_chunk_size=None,
        num_tokens=None,
        mask_zero=False,
        **kwargs,
    ):
        output_units = check_positive_int(
            "output_units", output_units, allow_none=True
        )
        num_tokens = check_positive_int(
            "num_tokens", num_tokens, allow_none=True
        )
        if mask_zero and num_tokens is None:
            raise ValueError(
                "Argument `mask_zero=True` needs `num_tokens` (token 0 is "
                "padding). Received num_tokens=None."
            )
        remat_chunk_size = check_positive_int(
            "remat_chunk_size", remat_chunk_size, allow_none=True
        )
        # Checked by type: `1 in ("auto", True, False)` holds in Python.
        use_fast_path = check_auto_or_bool("use_fast_path", use_fast_path)
        if remat_chunk_size is not None and keras.backend.backend() != "jax":
            raise ValueError(
                "Argument `remat_chunk_size` (chunked rematerialisation of "
                "the fast path) is only available on the JAX backend. "
                f"Received remat_chunk_size={remat_chunk_size} on "
                f"{keras.backend.backend()!r}."
            )
        cell = ELMCell(
            units,
            num_branches=num_branches,
            synapses_per_branch=synapses_per_branch,
            routing=routing,
            routing_seed=routing_seed,
            version=version,
            mlp_layers=mlp_layers,
            mlp_units=mlp_units,
            mlp_activation=mlp_activation,
            lambda_value=lambda_value,
            delta_t=delta_t,
            memory_tau_min=memory_tau_min,
            memory_tau_max=memory_tau_max,
            memory_tau_init_range=memory_tau_init_range,
            memory_tau_spacing=memory_tau_spacing,
            learn_memory_tau=learn_memory_tau,
            trace_tau=trace_tau,
            synapse_weight_init=synapse_weight_init,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            seed=seed,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="elm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.output_units = output_units
        self.use_fast_path = use_fast_path
        self.remat_chunk_size = remat_chunk_size
        self.num_tokens = num_tokens
        self.mask_zero = bool(mask_zero)
        self.output_kernel_initializer = (
            None
            if output_kernel_initializer is None
            else keras.initializers.get(output_kernel_initializer)
        )
        self.output_bias_initializer = (
            None
            if output_bias_initializer is None
            else keras.initializers.get(output_bias_initializer)
        )
        self.input_spec = keras.InputSpec(ndim=self._input_rank)

    @property
    def _input_rank(self):
        return 2 if self.num_tokens is not None else 3

    @property
    def uses_token_lookup(self):
        """Whether the fast path reads tokens by a row lookup (built layer).

        True for `num_tokens >= mlp_units / 2`: the lookup then traces
        `mlp_units` channels instead of `num_tokens` and skips the product
        with the first layer, and the `(batch, timesteps, num_tokens)`
        one-hot tensor is never built.
        """
        return self.num_tokens is not None and (
            2 * self.num_tokens >= self.cell.hidden_units
        )

    @property
    def units(self):
        return self.cell.units

    @property
    def input_dtype(self):
        """float32: `Layer.__call__` would otherwise cast an explicit
        `initial_state` to (b)float16 under a mixed policy. The sequences
        are read in float32 by the cell anyway; the MLP and the readout
        still run in the compute dtype."""
        return "float32"

    @property
    def version(self):
        return self.cell.version

    def build(self, sequences_shape, initial_state_shape=None):
        if self.num_tokens is not None:
            if len(sequences_shape) != 2:
                raise ValueError(
                    "`ELM(num_tokens=...)` expects integer tokens of rank 2 "
                    f"(batch, timesteps). Received input shape "
                    f"{sequences_shape}"
                )
            sequences_shape = (*sequences_shape, self.num_tokens)
        elif len(sequences_shape) != 3:
            raise ValueError(
                "`ELM` expects inputs of rank 3 (batch, timesteps, "
                f"features). Received input shape {sequences_shape}"
            )
        super().build(sequences_shape, initial_state_shape)
        # The trace size is known only once the cell has seen the input.
        self.state_size = list(self.cell.state_size)
        if self.stateful:
            self._use_float32_state_variables()
        if self.num_tokens is None:
            self.input_spec = keras.InputSpec(
                ndim=3, axes={-1: int(sequences_shape[-1])}
            )
        if self.output_units is not None:
            self._build_readout()
        # Decided once: under torch.compile (`jit_compile=True`) the call
        # must not serialize the activation again (Dynamo cannot trace it).
        self._fast_path_reason = scan.unsupported_reason(self)

    def _build_readout(self):
        cell = self.cell
        units = cell.units
        # The readout's seeds follow the MLP's (see `weight_seed_offset`).
        kernel_offset = cell.weight_seed_offset(cell.mlp_layers + 1)
        bias_offset = cell.weight_seed_offset(cell.mlp_layers + 1, bias=True)
        seed = cell.seed
        kernel_initializer = self.output_kernel_initializer
        if kernel_initializer is None:
            kernel_initializer = torch_linear_kernel_initializer(
                None if seed is None else seed + kernel_offset
            )
        else:
            kernel_initializer = distinct_initializer(
                kernel_initializer, kernel_offset
            )
        self.output_kernel = self.add_weight(
            shape=(units, self.output_units),
            initializer=kernel_initializer,
            name="output_kernel",
        )
        bias_initializer = self.output_bias_initializer
        if bias_initializer is None:
            bound = 1.0 / pymath.sqrt(units)
            bias_initializer = keras.initializers.RandomUniform(
                -bound, bound, seed=None if seed is None else seed + bias_offset
            )
        else:
            bias_initializer = distinct_initializer(
                bias_initializer, bias_offset
            )
        self.output_bias = self.add_weight(
            shape=(self.output_units,),
            initializer=bias_initializer,
            name="output_bias",
        )

    def _use_float32_state_variables(self):
        # keras.layers.RNN creates the stateful variables with autocast, so
        # under a mixed policy they would be read, and carried between
        # batches, in (b)float16. Like RNN, keep them out of the layer's
        # tracked weights (they are not saved).
        states = [
            keras.Variable(
                ops.convert_to_numpy(state),
                trainable=False,
                dtype="float32",
                autocast=False,
                name="rnn_state",
            )
            for state in self.states
        ]
        object.__setattr__(self, "states", states)

    def readout(self, memory):
        """The neuron's output: `W_y m + b_y`, or `m` without a readout."""
        memory = ops.cast(memory, self.compute_dtype)
        if self.output_units is None:
            return memory
        return ops.matmul(memory, self.output_kernel) + self.output_bias

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch_size, timesteps = sequences_shape[0], sequences_shape[1]
        output_size = self.output_units or self.cell.units
        if self.return_sequences:
            output_shape = (batch_size, timesteps, output_size)
        else:
            output_shape = (batch_size, output_size)
        if self.return_state:
            return output_shape, *[(batch_size, s) for s in self.state_size]
        return output_shape

    def compute_output_spec(
        self, sequences, initial_state=None, mask=None, training=False
    ):
        shapes = self.compute_output_shape(sequences.shape)
        if not self.return_state:
            return keras.KerasTensor(shapes, dtype=self.compute_dtype)
        output = keras.KerasTensor(shapes[0], dtype=self.compute_dtype)
        states = [keras.KerasTensor(s, dtype="float32") for s in shapes[1:]]
        return output, *states

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if self.unroll and sequences.shape[1] is None:
            raise ValueError(
                "Argument `unroll=True` needs a defined number of timesteps. "
                f"Received input shape {sequences.shape}"
            )
        if self.stateful:
            layer_inputs.check_stateful_batch_size(self.states, sequences)
        if initial_state is None:
            if self.stateful:
                # Copies: the variables are assigned below, which on torch
                # would modify tensors the backward pass still needs (as
                # keras.layers.RNN copies them too).
                initial_state = [ops.copy(state) for state in self.states]
            else:
                initial_state = self.get_initial_state(
                    batch_size=ops.shape(sequences)[0]
                )
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != 2:
            raise ValueError(
                "Argument `initial_state` of `ELM` must be a list of 2 "
                f"tensors [memory, trace]. Received {len(initial_state)}."
            )
        # Unlike keras.layers.RNN, keep the states float32 under any policy.
        initial_state = [
            ops.cast(ops.convert_to_tensor(s), "float32") for s in initial_state
        ]
        layer_inputs.check_initial_state(
            initial_state, sequences, self.state_size
        )
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.num_tokens is not None:
            sequences = layer_inputs.check_tokens(sequences, self.num_tokens)
            if self.mask_zero:
                mask = layer_inputs.padding_mask(sequences, mask)
        if mask is not None:
            mask = layer_inputs.standardize_mask(mask, sequences)
            # Padding is often garbage (NaN, inf). A select, unlike a
            # product with 0, keeps it out of every output and gradient.
            keep = (
                mask
                if self.num_tokens is not None
                else ops.expand_dims(mask, -1)
            )
            sequences = ops.where(keep, sequences, ops.zeros_like(sequences))
        if self.stateful:
            sequences, mask = layer_inputs.with_state_batch_size(
                self.states, sequences, mask
            )
        last_output, outputs, states = self._run_loop(
            sequences, initial_state, mask, training
        )
        if self.stateful:
            for variable, state in zip(self.states, states):
                variable.assign(state)
        output = self.readout(outputs if self.return_sequences else last_output)
        if (
            self.zero_output_for_mask
            and mask is not None
            and self.output_units is not None
        ):
            output = layer_inputs.zero_masked_readout(
                output, mask, self.go_backwards, self.return_sequences
            )
        if self.return_state:
            return output, *states
        return output

    def __call__(self, *args, **kwargs):
        num_tokens = self.num_tokens
        if num_tokens is not None:
            if args:
                args = (
                    layer_inputs.numpy_tokens(args[0], num_tokens),
                    *args[1:],
                )
            elif "sequences" in kwargs:
                kwargs["sequences"] = layer_inputs.numpy_tokens(
                    kwargs["sequences"], num_tokens
                )
        return super().__call__(*args, **kwargs)

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.mask_zero:
            tokens = layer_inputs.check_tokens(
                layer_inputs.numpy_tokens(sequences, self.num_tokens),
                self.num_tokens,
            )
            mask = layer_inputs.padding_mask(tokens, mask)
        return super().compute_mask(sequences, mask)

    def one_hot(self, tokens):
        """The one-hot float32 inputs of the tokens (see `layer_inputs`)."""
        return layer_inputs.one_hot(tokens, self.num_tokens)

    def fast_path_options(self):
        """Backend-specific keyword arguments of the fast memory core."""
        backend = keras.backend.backend()
        if backend == "jax":
            return {
                "unroll": True if self.unroll else None,
                "remat_chunk": self.remat_chunk_size,
            }
        return {}

    @property
    def fast_path_reason(self):
        """Why the fast path cannot run this layer, or None if it can.

        Decided once, when the layer is built.
        """
        if not hasattr(self, "_fast_path_reason"):
            return scan.unsupported_reason(self)
        return self._fast_path_reason

    def _run_loop(self, sequences, initial_state, mask, training):
        if self.use_fast_path in ("auto", True):
            # Decided up front: an error raised while the fast path runs is
            # a bug to surface, never a silent fall-back to the slow loop.
            reason = self.fast_path_reason
            if reason is None:
                return scan.fast_inner_loop(
                    self,
                    sequences,
                    initial_state,
                    mask,
                    need_states=self.return_state or self.stateful,
                )
            if self.use_fast_path is True:
                raise ValueError(
                    "`use_fast_path=True`, but the fast path cannot run "
                    f"this layer: {reason}. Use use_fast_path='auto' to "
                    "fall back to the generic loop."
                )
        if self.num_tokens is not None:
            sequences = self.one_hot(sequences)
        last_output, outputs, states = self.inner_loop(
            sequences=sequences,
            initial_state=initial_state,
            mask=mask,
            training=training,
        )
        if mask is not None and not self.zero_output_for_mask:
            last_output, outputs = layer_inputs.carry_initial_memory(
                last_output,
                outputs,
                mask,
                initial_state[0],
                self.go_backwards,
                self.return_sequences,
            )
        return last_output, outputs, states

    def get_config(self):
        config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            config.pop(key, None)
        base_config = super().get_config()
        del base_config["cell"]
        return {
            **base_config,
            **config,
            "output_units": self.output_units,
            "use_fast_path": self.use_fast_path,
            "remat_chunk_size": self.remat_chunk_size,
            "num_tokens": self.num_tokens,
            "mask_zero": self.mask_zero,
            "output_kernel_initializer": (
                None
                if self.output_kernel_initializer is None
                else keras.initializers.serialize(
                    self.output_kernel_initializer
                )
            ),
            "output_bias_initializer": (
                None
                if self.output_bias_initializer is None
                else keras.initializers.serialize(self.output_bias_initializer)
            ),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
