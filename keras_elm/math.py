"""Parameter transforms of the ELM neuron, shared by the cell and fast paths.

Every function here takes and returns `keras.ops` tensors (or NumPy arrays
where noted) so that the generic cell and each backend fast path compute the
same numbers from the same raw parameters.
"""

import numpy as np
from keras import ops

# LeCun's scaled tanh, used on the MLP output: 1.7159 * tanh(2/3 * x).
SCALED_TANH_GAIN = 1.7159
SCALED_TANH_SLOPE = 2.0 / 3.0


def scaled_tanh(x):
    """LeCun's scaled hyperbolic tangent `1.7159 * tanh(2/3 * x)`."""
    return SCALED_TANH_GAIN * ops.tanh(SCALED_TANH_SLOPE * x)


def synapse_weight(raw):
    """Synaptic weights w_s from their raw parameter: `relu(raw)`."""
    return ops.relu(raw)


def memory_tau(raw, tau_min, tau_max):
    """Memory time constants τ_m from their raw parameter.

    `τ_m = τ_min + (τ_max - τ_min) * sigmoid(raw)`.
    """
    return tau_min + (tau_max - tau_min) * ops.sigmoid(raw)


def decay(tau, delta_t):
    """Per-step decay `κ = exp(-Δt / τ)` of a leaky trace."""
    return ops.exp(-delta_t / tau)


def memory_coefficients(
    raw_tau, tau_min, tau_max, delta_t, lambda_value, version
):
    """Decay κ_m and input gain of the memory update.

    Version 1: `m_t = κ_m m_{t-1} + λ (1 - κ_m) Δm_t`.
    Version 2: `m_t = κ_m m_{t-1} + (1 - κ_λ) Δm_t`, `κ_λ = exp(-Δt λ / τ_m)`.

    Args:
        raw_tau: float32 raw memory time constants, shape `(units,)`.
        tau_min: τ_min.
        tau_max: τ_max.
        delta_t: Δt.
        lambda_value: λ.
        version: 1 or 2.

    Returns:
        A tuple `(kappa_m, gain)` of float32 tensors of shape `(units,)`.
    """
    tau = memory_tau(raw_tau, tau_min, tau_max)
    kappa_m = decay(tau, delta_t)
    if version == 1:
        gain = lambda_value * (1.0 - kappa_m)
    else:
        gain = 1.0 - decay(tau, delta_t * lambda_value)
    return kappa_m, gain


def initial_memory_tau_raw(
    units, tau_min, tau_max, init_range=None, spacing="log"
):
    """Raw τ_m that places the initial τ_m in `init_range` (NumPy).

    τ_m is bounded to `[τ_min, τ_max]` (see `memory_tau`) and starts spaced
    over `init_range` (the bounds themselves by default): log-spaced, as in
    the authors' code, or evenly (`"linear"`), as the paper describes for
    SHD and NeuronIO. Values on a bound are pulled inside by a float32
    epsilon so the logit is finite.
    """
    low, high = (tau_min, tau_max) if init_range is None else init_range
    if spacing == "log":
        tau = np.logspace(np.log10(low), np.log10(high), units)
    else:
        tau = np.linspace(low, high, units)
    fraction = (tau - tau_min) / (tau_max - tau_min)
    eps = np.finfo(np.float32).eps
    fraction = np.clip(fraction, eps, 1.0 - eps)
    return np.log(fraction / (1.0 - fraction)).astype("float32")


def inverse_relu_init(value):
    """Raw synaptic weight for an initial w_s of `value` (relu: identity)."""
    return float(value)
