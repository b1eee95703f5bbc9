"""A small NumPy neuron that writes NeuronIO-like files offline.

`simulate()` writes a small NeuronIO-like set in the release's file
format, from a simple NumPy neuron with dendritic branches: a stand-in
for smoke runs and tests, not the Beniaguev L5PC.
"""

import math
import os

import numpy as np

from keras_elm.checks import check_int as _check_int
from keras_elm.data.files import check_writable
from keras_elm.data.neuronio.files import NUM_SEGMENTS
from keras_elm.data.neuronio.files import SIM_DURATION_MS
from keras_elm.data.neuronio.files import _write_file

# Part of `Params` of simulated files: bump it whenever a seed would
# simulate different data.
SIMULATOR_VERSION = 1

# The synthetic cell of `simulate`. Rates in Hz, times in ms, voltages in
# mV; a branch's voltage is its depolarisation above rest.
_CELL = {
    "branches": 32,
    "basal_segments": 262,  # the release's basal/apical boundary
    "excitatory_rate": 2.0,
    "inhibitory_rate": 2.0,
    "input_gain": (0.85, 1.0),  # per simulation
    "branch_modulation": 0.8,  # log-rate std, knots every 150 ms
    "global_modulation": 0.6,  # log-rate std, knots every 400 ms
    "tau_ampa": 2.0,
    "tau_nmda": 60.0,
    "tau_gaba": 8.0,
    "tau_branch": 8.0,
    "weight_ampa": 25.0,
    "weight_nmda": 2.0,
    "weight_gaba": 5.0,
    "nmda_half_voltage": 10.0,  # Mg block sigmoid
    "nmda_slope": 3.0,
    "rest": -76.0,
    "tau_soma": 15.0,
    "soma_gain": 2.9,
    "threshold": -54.0,
    "spike_peak": 20.0,
    "reset": -62.0,
    "refractory": 3,
    "tau_ahp": 200.0,
    "ahp_step": 12.0,
    "backpropagation": 5.0,  # branch depolarisation of a somatic spike
}


def _cell_morphology(cell_seed):
    """Branch of each segment, synaptic weights, branch-to-soma coupling."""
    rng = np.random.default_rng([cell_seed, SIMULATOR_VERSION])
    branches = _CELL["branches"]
    edges = np.linspace(0, NUM_SEGMENTS, branches + 1).astype(int)
    branch = np.repeat(np.arange(branches), np.diff(edges))
    position = np.arange(NUM_SEGMENTS) - edges[branch]
    return {
        "branch": branch,
        "distance": 20.0
        + 15.0 * position
        + 300.0 * (np.arange(NUM_SEGMENTS) >= _CELL["basal_segments"]),
        "ex_weight": rng.lognormal(0.0, 0.4, NUM_SEGMENTS),
        "inh_weight": rng.lognormal(0.0, 0.4, NUM_SEGMENTS),
        "coupling": rng.uniform(0.5, 1.0, branches),
    }


def _smooth_noise(rng, duration, count, knot_ms):
    """`(duration, count)` standard noise, linear between knots."""
    knots = rng.standard_normal((math.ceil(duration / knot_ms) + 2, count))
    times = np.arange(knots.shape[0]) * knot_ms
    steps = np.arange(duration)
    return np.stack(
        [np.interp(steps, times, knots[:, j]) for j in range(count)], axis=1
    )


def _input_spikes(rng, morphology, duration):
    """Boolean `(duration, 639)` excitatory and inhibitory spikes."""
    branches = _CELL["branches"]
    gain = rng.uniform(*_CELL["input_gain"])
    shared = _CELL["global_modulation"] * _smooth_noise(rng, duration, 1, 400.0)
    local = _smooth_noise(rng, duration, branches, 150.0)
    # Inhibition partly tracks excitation on each branch, as in a balanced net.
    local_inh = 0.6 * local + 0.8 * _smooth_noise(
        rng, duration, branches, 150.0
    )
    spikes = []
    for modulation, rate in (
        (local, _CELL["excitatory_rate"]),
        (local_inh, _CELL["inhibitory_rate"]),
    ):
        per_segment = rate * gain * rng.lognormal(0.0, 0.5, NUM_SEGMENTS)
        log_rate = _CELL["branch_modulation"] * modulation + shared
        probability = (
            np.exp(log_rate)[:, morphology["branch"]] * per_segment * 1e-3
        ).astype(np.float32)
        spikes.append(rng.random(probability.shape, np.float32) < probability)
    return spikes


def _run_cell(morphology, excitatory, inhibitory):
    """Output spike times (ms) and the soma voltage (mV, one sample per ms)."""
    c = _CELL
    branches = c["branches"]
    segments = np.arange(NUM_SEGMENTS)

    def per_branch(spikes, weights):
        matrix = np.zeros((NUM_SEGMENTS, branches), np.float32)
        matrix[segments, morphology["branch"]] = weights
        return spikes.astype(np.float32) @ matrix

    ex_drive = per_branch(excitatory, morphology["ex_weight"]).astype(
        np.float64
    )
    inh_drive = per_branch(inhibitory, morphology["inh_weight"]).astype(
        np.float64
    )
    decay = {
        name: math.exp(-1.0 / c[name])
        for name in (
            "tau_ampa",
            "tau_nmda",
            "tau_gaba",
            "tau_branch",
            "tau_soma",
            "tau_ahp",
        )
    }
    coupling = morphology["coupling"] * c["soma_gain"] / branches
    ampa = np.zeros(branches)
    nmda = np.zeros(branches)
    gaba = np.zeros(branches)
    branch_v = np.zeros(branches)
    voltage, ahp, refractory = c["rest"], 0.0, 0
    trace = np.empty(ex_drive.shape[0])
    spike_times = []
    for t in range(ex_drive.shape[0]):
        ampa = ampa * decay["tau_ampa"] + ex_drive[t]
        nmda = nmda * decay["tau_nmda"] + ex_drive[t]
        gaba = gaba * decay["tau_gaba"] + inh_drive[t]
        # NMDA current needs a depolarised branch (magnesium block): strong
        # clustered input starts a self-sustaining plateau.
        unblocked = 1.0 / (
            1.0 + np.exp((c["nmda_half_voltage"] - branch_v) / c["nmda_slope"])
        )
        drive = (
            c["weight_ampa"] * ampa
            + c["weight_nmda"] * nmda * unblocked
            - c["weight_gaba"] * gaba
        )
        branch_v = branch_v * decay["tau_branch"] + (
            1 - decay["tau_branch"]
        ) * np.maximum(drive, -20.0)
        ahp *= decay["tau_ahp"]
        if refractory:
            refractory -= 1
            trace[t] = voltage
            continue
        target = c["rest"] + coupling @ branch_v - ahp
        new = target + (voltage - target) * decay["tau_soma"]
        if new < c["threshold"]:
            voltage = new
            trace[t] = voltage
            continue
        # Threshold crossed between samples t - 1 and t: interpolate.
        spike_times.append(t - 1 + (c["threshold"] - voltage) / (new - voltage))
        trace[t] = c["spike_peak"]
        voltage = c["reset"]
        refractory = c["refractory"]
        ahp += c["ahp_step"]
        branch_v = branch_v + c["backpropagation"]
    return np.asarray(spike_times), trace


def _simulation_dict(rng, morphology, duration):
    excitatory, inhibitory = _input_spikes(rng, morphology, duration)
    output, trace = _run_cell(morphology, excitatory, inhibitory)

    def by_segment(spikes):
        segments, times = np.nonzero(spikes.T)
        bounds = np.searchsorted(segments, np.arange(NUM_SEGMENTS + 1))
        # Whole ms as floats, like the release.
        return {
            s: times[bounds[s] : bounds[s + 1]].astype(np.float64)
            for s in range(NUM_SEGMENTS)
        }

    return {
        "exInputSpikeTimes": by_segment(excitatory),
        "inhInputSpikeTimes": by_segment(inhibitory),
        "outputSpikeTimes": output.astype(np.float64),
        "somaVoltageLowRes": trace.astype(np.float64),
    }


def simulate(
    directory,
    *,
    num_files=1,
    simulations_per_file=8,
    duration_ms=SIM_DURATION_MS,
    seed=0,
    cell_seed=0,
):
    """Writes a small NeuronIO-like data set offline, in the release's format.

    NOT the Beniaguev L5PC: a NumPy neuron with dendritic nonlinearity,
    so that the pipeline (files, loader, model, evaluation) can run
    without the 115 GB release. The 639 segments form 32 branches of
    about 20 neighbouring segments (segments 0..261 "basal", the rest
    "apical", as in the release). Each segment gets Poisson excitatory and
    inhibitory input whose rates vary slowly in time (per branch every
    ~150 ms, over the whole cell every ~400 ms) and per simulation (a
    random overall gain), so the output has structure. Per branch the
    spikes drive AMPA- (2 ms), NMDA- (60 ms) and GABA-like (8 ms)
    exponential currents; the NMDA current passes a sigmoidal,
    voltage-dependent "magnesium block" of the branch's own leaky voltage
    (8 ms), so clustered input starts dendritic plateaus. The branches
    feed a leaky integrate-and-fire soma (rest -76 mV, 15 ms, threshold
    -54 mV) with a 3 ms refractory period, an afterhyperpolarisation
    (200 ms) and a back-propagating depolarisation of the branches; the
    1 ms voltage trace shows a spike as one sample at +20 mV, so the
    target's cut at -55 mV matters as with the real cell. Output spike
    times are interpolated threshold crossings (float ms), input spike
    times whole ms as floats. The output averages about 1 spike per
    second (0.7-1.3 over sets of simulations, 0-3 per second per
    simulation, a few silent ones, rarely more than evaluation's 24
    spikes in 6 s); between spikes the voltage stays within about -90 to
    -54 mV. About 0.5 s per 6 s simulation on one CPU core.

    The cell (branches, weights) depends only on `cell_seed`, so files
    written with different `seed`s (train, valid, test) come from the same
    neuron. Each file is written atomically (a temporary file renamed
    when complete, with the mode the umask gives a new file: readable by
    others under the usual 022) with pickle protocol 2, named
    in the release's pattern with a per-file seed derived from `seed`;
    `Params` say what made it (`Params["model"]`).

    Args:
        directory: the folder to write into (created if needed); pass
            `<data_dir>/train` etc. to make split folders.
        num_files: files to write.
        simulations_per_file: simulations per file (the release: 128).
        duration_ms: steps per simulation (the release: 6,000); training
            windows need more than `window + 500` ms.
        seed: seed of the inputs, an integer >= 0.
        cell_seed: seed of the neuron's morphology and weights, an
            integer >= 0.

    Returns:
        The sorted list of the written paths.

    Example:

    >>> import tempfile
    >>> paths = simulate(tempfile.mkdtemp(), simulations_per_file=1,
    ...                  duration_ms=1000)
    >>> os.path.basename(paths[0]).startswith("sim__saved_InputSpikes_DVTs__")
    True
    """
    num_files = _check_int("num_files", num_files, 1)
    simulations_per_file = _check_int(
        "simulations_per_file", simulations_per_file, 1
    )
    duration_ms = _check_int("duration_ms", duration_ms, 1)
    seed = _check_int("seed", seed, 0)
    cell_seed = _check_int("cell_seed", cell_seed, 0)
    directory = os.fspath(directory)
    check_writable(directory, what="`directory`")
    morphology = _cell_morphology(cell_seed)
    segment_types = [
        "basal" if s < _CELL["basal_segments"] else "apical"
        for s in range(NUM_SEGMENTS)
    ]
    paths = []
    for index in range(num_files):
        file_seed = int(
            np.random.SeedSequence([seed, index]).generate_state(1)[0]
        )
        rng = np.random.default_rng(file_seed)
        simulations = [
            _simulation_dict(rng, morphology, duration_ms)
            for _ in range(simulations_per_file)
        ]
        params = {
            "model": "keras_elm synthetic NeuronIO-like cell (NumPy, "
            "32 dendritic branches with NMDA-like nonlinearity, "
            "integrate-and-fire soma); not the Beniaguev L5PC",
            "simulatorVersion": SIMULATOR_VERSION,
            "cellSeed": cell_seed,
            "randomSeed": file_seed,
            "numSimulations": simulations_per_file,
            "totalSimDurationInSec": duration_ms / 1000,
            "allSegmentsType": segment_types,
            "allSegments_DistFromSoma": morphology["distance"].tolist(),
            "branchOfSegment": morphology["branch"].tolist(),
            "cell": dict(_CELL),
        }
        path = _write_file(directory, simulations, params)
        paths.append(path)
    return sorted(paths)
