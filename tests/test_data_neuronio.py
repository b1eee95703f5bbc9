"""`keras_elm.data.neuronio` on small pickles written by hand, as released."""

import os
import pickle
import re
import stat

import keras
import numpy as np
import pytest

from keras_elm.data import neuronio

DURATION = 2000  # ms: windows of 500 then start at 500..1499
SEG = neuronio.NUM_SEGMENTS


def _voltage(k):
    """A rising ramp (unique per step and simulation) with spike peaks."""
    voltage = -100.0 + 0.02 * np.arange(DURATION) + 0.003 * k
    voltage[[120, 1300]] = 25.0  # cut to -55 by the target
    return voltage


def _simulation(k, output_times):
    ex = {s: np.zeros(0) for s in range(SEG)}  # every segment, as released
    inh = {s: np.zeros(0) for s in range(SEG)}
    ex[0] = np.array([0.0, 10.0, 10.0, 700.0 + k])  # a double spike in 10
    ex[5] = np.array([1999.0, 2000.0])  # 2000 is past the trace: dropped
    inh[0] = np.array([3.0, 900.0])
    inh[SEG - 1] = np.array([1500.0 + k])
    return {
        "exInputSpikeTimes": ex,
        "inhInputSpikeTimes": inh,
        "outputSpikeTimes": np.asarray(output_times, np.float64),
        "somaVoltageLowRes": _voltage(k),
    }


# Simulation 2 has 25 output spikes: evaluation leaves it out.
OUTPUT_TIMES = (
    [100.7, 100.2, 1200.5],
    [0.3, 1999.4],
    list(600.0 + 40.0 * np.arange(25)),
)
EXPECTED_BINS = ([99, 100, 1200], [0, 1998], list(599 + 40 * np.arange(25)))


def _write(path, content):
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)
    return str(path)


def _content(simulations):
    return {
        "Params": {"totalSimDurationInSec": DURATION / 1000},
        "Results": {"listOfSingleSimulationDicts": simulations},
    }


@pytest.fixture
def sim_file(tmp_path):
    sims = [_simulation(k, t) for k, t in enumerate(OUTPUT_TIMES)]
    return _write(
        tmp_path / "sim__saved_InputSpikes_DVTs__30_outSpikes__3_"
        "simulationRuns__2_secDuration__randomSeed_1.p",
        _content(sims),
    )


def _expected(k):
    inputs = np.zeros((DURATION, neuronio.NUM_INPUTS), np.float32)
    inputs[[0, 10, 700 + k], 0] = 1.0
    inputs[1999, 5] = 1.0
    inputs[[3, 900], SEG] = -1.0
    inputs[1500 + k, 2 * SEG - 1] = -1.0
    spikes = np.zeros(DURATION, np.float32)
    spikes[EXPECTED_BINS[k]] = 1.0
    soma = (np.minimum(_voltage(k), -55.0) + 67.7) * 0.1
    return inputs, spikes, soma


def test_reads_inputs_spikes_and_soma_exactly(sim_file):
    sims = neuronio.read_file(sim_file)
    assert len(sims) == 3
    for k, sim in enumerate(sims):
        inputs, spikes, soma = neuronio.simulation_arrays(sim)
        expected = _expected(k)
        assert inputs.dtype == spikes.dtype == soma.dtype == np.float32
        np.testing.assert_array_equal(inputs, expected[0])
        np.testing.assert_array_equal(spikes, expected[1])
        np.testing.assert_allclose(soma, expected[2], rtol=0, atol=1e-6)
        assert sim.num_spikes == len(EXPECTED_BINS[k])
    assert neuronio.simulation_arrays(sims[0], "int8")[0].dtype == np.int8
    assert sims[0].soma[120] == pytest.approx(1.27)  # (-55 + 67.7) * 0.1


def test_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "nope.p")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        neuronio.read_file(missing)
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        neuronio.load(files=[missing])


def test_missing_key_names_file_simulation_and_key(tmp_path):
    sims = [_simulation(0, [5.0]), _simulation(1, [5.0])]
    del sims[1]["somaVoltageLowRes"]
    path = _write(tmp_path / "a.p", _content(sims))
    with pytest.raises(
        ValueError,
        match=re.escape(path) + r".*simulation 1"
        r".*'somaVoltageLowRes'",
    ):
        neuronio.read_file(path)
    path = _write(tmp_path / "b.p", {"Params": {}})
    with pytest.raises(ValueError, match=re.escape(path) + ".*'Results'"):
        neuronio.read_file(path)


def test_not_a_pickle_and_bad_segment_name_the_file(tmp_path):
    path = str(tmp_path / "text.p")
    with open(path, "w") as f:
        f.write("not a pickle")
    with pytest.raises(ValueError, match=re.escape(path)):
        neuronio.read_file(path)
    sim = _simulation(0, [5.0])
    sim["inhInputSpikeTimes"][SEG] = np.array([1.0])
    path = _write(tmp_path / "segment.p", _content([sim]))
    with pytest.raises(
        ValueError,
        match=re.escape(path) + r".*'inhInput"
        r"SpikeTimes'.*segment indices",
    ):
        neuronio.read_file(path)


def test_windows_have_the_model_shapes_and_dtypes(sim_file):
    data = neuronio.load(
        files=[sim_file], batch_size=4, steps_per_epoch=3, seed=0
    )
    assert isinstance(data, keras.utils.PyDataset) and len(data) == 3
    inputs, targets = data[1]
    assert inputs.shape == (4, 500, neuronio.NUM_INPUTS)
    assert inputs.dtype == np.float32
    assert set(np.unique(inputs)) <= {-1.0, 0.0, 1.0}
    assert sorted(targets) == ["soma", "spike"]
    for value in targets.values():
        assert value.shape == (4, 500, 1) and value.dtype == np.float32
    _, (spike, soma), weights = neuronio.load(
        files=[sim_file],
        batch_size=2,
        steps_per_epoch=1,
        seed=0,
        targets="tuple",
        burn_in=150,
    )[0]
    assert spike.shape == soma.shape == (2, 500, 1)
    assert weights.shape == (2, 500)
    assert not weights[:, :150].any() and weights[:, 150:].all()


def test_default_epoch_is_ten_windows_per_simulation(sim_file):
    # 3 simulations, from the file name's "3_simulationRuns".
    assert len(neuronio.load(files=[sim_file], batch_size=4)) == 8


def _locate(sims, soma_window):
    """`(simulation, start)` whose soma target the window shows."""
    for k, sim in enumerate(sims):
        views = np.lib.stride_tricks.sliding_window_view(
            sim.soma, soma_window.size
        )
        (starts,) = np.nonzero((views == soma_window).all(axis=1))
        if starts.size:
            return k, int(starts[0])
    raise AssertionError("window not found")


def test_windows_are_slices_of_simulations_after_500_ms(sim_file):
    sims = neuronio.read_file(sim_file)
    data = neuronio.load(
        files=[sim_file], batch_size=8, steps_per_epoch=4, seed=3
    )
    starts = []
    for index in range(len(data)):
        inputs, targets = data[index]
        for row in range(8):
            k, start = _locate(sims, targets["soma"][row, :, 0])
            dense = neuronio.simulation_arrays(sims[k])
            np.testing.assert_array_equal(
                inputs[row], dense[0][start : start + 500]
            )
            np.testing.assert_array_equal(
                targets["spike"][row, :, 0], dense[1][start : start + 500]
            )
            starts.append(start)
    assert 500 <= min(starts) and max(starts) <= DURATION - 500 - 1
    assert len(set(starts)) > 16  # random starts, not a fixed grid


def test_same_seed_same_batches_in_any_order(sim_file):
    a = neuronio.load(files=[sim_file], batch_size=4, steps_per_epoch=3, seed=7)
    b = neuronio.load(files=[sim_file], batch_size=4, steps_per_epoch=3, seed=7)
    c = neuronio.load(files=[sim_file], batch_size=4, steps_per_epoch=3, seed=8)
    later = b[2][0]
    np.testing.assert_array_equal(a[2][0], later)
    np.testing.assert_array_equal(a[0][1]["soma"], b[0][1]["soma"])
    assert not np.array_equal(a[0][1]["soma"], c[0][1]["soma"])
    first = a[0][1]["soma"]
    a.on_epoch_end()
    assert not np.array_equal(a[0][1]["soma"], first)  # new epoch, new windows
    fixed = neuronio.load(
        files=[sim_file], split="val", batch_size=4, steps_per_epoch=3, seed=7
    )
    first = fixed[0][1]["soma"]
    fixed.on_epoch_end()
    np.testing.assert_array_equal(fixed[0][1]["soma"], first)


def test_never_holds_more_than_cache_files_and_rotates(tmp_path):
    paths = [
        _write(tmp_path / f"f{i}.p", _content([_simulation(i, [5.0])]))
        for i in range(3)
    ]
    data = neuronio.load(
        files=paths, batch_size=2, steps_per_epoch=6, seed=0, cache_files=1
    )
    used = set()
    for epoch in range(2):
        for index in range(len(data)):
            data[index]
            assert len(data.cached_files) <= 1
            used.update(data.cached_files)
        data.on_epoch_end()
    assert used == set(paths)
    # Files in a seeded order, one at a time: each read once per epoch.
    assert data.files_read == 6
    data = neuronio.load(
        files=paths, batch_size=4, steps_per_epoch=5, seed=0, cache_files=2
    )
    for index in range(len(data)):
        data[index]
        assert len(data.cached_files) <= 2


def test_split_folders_and_flat_folder(tmp_path, sim_file):
    content = _content([_simulation(0, [5.0])])
    for folder in ("train", "val"):
        os.makedirs(tmp_path / "split" / folder / "part")
        _write(tmp_path / "split" / folder / "part" / f"{folder}.p", content)
    found = neuronio.list_files(str(tmp_path / "split"), split="val")
    assert [os.path.basename(p) for p in found] == ["val.p"]
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        neuronio.list_files(str(tmp_path / "split"), split="test")
    # A flat folder serves every split, and is not searched below.
    assert neuronio.list_files(str(tmp_path), split="test") == [sim_file]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        neuronio.list_files(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="split"):
        neuronio.list_files(str(tmp_path), split="valid")


def test_sliding_windows_and_stitch_round_trip(rng):
    for length in (6000, 1234, 500, 37):
        x = rng.normal(size=(length, 3)).astype(np.float32)
        windows = neuronio.sliding_windows(x)
        assert windows.shape[1:] == (500, 3)
        np.testing.assert_array_equal(neuronio.stitch(windows, length), x)
    assert neuronio.sliding_windows(np.zeros((6000, 2))).shape[0] == 17


def test_stitch_keeps_the_first_window_and_drops_later_burn_ins():
    windows = np.repeat(np.arange(17.0)[:, None], 500, axis=1)
    stitched = neuronio.stitch(windows, 6000)
    assert (stitched[:500] == 0).all()
    assert (stitched[500:850] == 1).all() and stitched[850] == 2
    # The last window starts at 5600 and counts from 5750.
    assert (stitched[5400:5750] == 15).all() and (stitched[5750:] == 16).all()


def _channel_model(inputs):
    """Stand-in model: spike score = excitatory input of segment 0."""
    return {"spike": inputs[..., 0], "soma": inputs[..., SEG : SEG + 1]}


def test_evaluation_drops_first_500_ms_and_busy_simulations(sim_file):
    result = neuronio.evaluation_set(
        sim_file, _channel_model, match_soma_statistics=False
    )
    assert result.num_simulations == 3 and result.num_kept == 2
    assert result.spike_true.shape == (2, DURATION - 500)
    for k in range(2):
        inputs, spikes, _ = _expected(k)
        np.testing.assert_array_equal(result.spike_true[k], spikes[500:])
        np.testing.assert_array_equal(result.spike_pred[k], inputs[500:, 0])
        np.testing.assert_allclose(
            result.soma_pred[k], inputs[500:, SEG] / 0.1 - 67.7, atol=1e-9
        )
        np.testing.assert_allclose(
            result.soma_true[k], np.minimum(_voltage(k), -55)[500:], atol=1e-4
        )
    kept_all = neuronio.evaluation_set(
        [sim_file], _channel_model, max_spikes=25, ignore_ms=0
    )
    assert kept_all.num_kept == 3
    # Matched to the targets' mean and std over the whole file.
    assert kept_all.soma_pred.mean() == pytest.approx(kept_all.soma_true.mean())
    assert kept_all.soma_pred.std() == pytest.approx(kept_all.soma_true.std())


def test_simulate_writes_release_files_the_loader_reads(tmp_path):
    paths = neuronio.simulate(
        str(tmp_path), simulations_per_file=2, duration_ms=2000, seed=0
    )
    assert len(paths) == 1
    name = os.path.basename(paths[0])
    assert re.fullmatch(
        r"sim__saved_InputSpikes_DVTs__\d+_outSpikes__2_"
        r"simulationRuns__2_secDuration__randomSeed_\d+\.p",
        name,
    )
    with open(paths[0], "rb") as f:
        assert f.read(2) == b"\x80\x02"  # pickle protocol 2
        f.seek(0)
        content = pickle.load(f, encoding="latin1")
    assert "not the Beniaguev L5PC" in content["Params"]["model"]
    raw = content["Results"]["listOfSingleSimulationDicts"]
    for sim in raw:
        times = np.concatenate(list(sim["exInputSpikeTimes"].values()))
        assert times.dtype == np.float64 and (times == np.round(times)).all()
        # Poisson input: about 1-5 spikes per segment and second.
        assert 1.0 < times.size / SEG / 2.0 < 5.0
        voltage = sim["somaVoltageLowRes"]
        assert voltage.shape == (2000,)
        between = voltage[voltage < 0]
        assert -95 < between.min() and between.max() < -50
        assert np.ptp(between) > 5  # a trace that varies
    assert sum(sim["outputSpikeTimes"].size for sim in raw) >= 1
    sims = neuronio.read_file(paths[0])
    assert len(sims) == 2
    assert name.startswith(
        f"sim__saved_InputSpikes_DVTs__{sum(s.num_spikes for s in sims)}_"
    )
    data = neuronio.load(str(tmp_path), batch_size=2, steps_per_epoch=2, seed=0)
    inputs, _ = data[1]
    assert inputs.shape == (2, 500, neuronio.NUM_INPUTS)
    assert (inputs == 1).any() and (inputs == -1).any()
    assert neuronio.simulate(
        str(tmp_path / "again"),
        simulations_per_file=2,
        duration_ms=2000,
        seed=0,
    )[0].endswith(name)


def test_fit_and_evaluate_a_keras_model_with_named_outputs(sim_file):
    inputs = keras.Input((500, neuronio.NUM_INPUTS))
    hidden = keras.layers.Dense(4, activation="tanh")(inputs)
    model = keras.Model(
        inputs,
        {
            "spike": keras.layers.Dense(1, name="spike")(hidden),
            "soma": keras.layers.Dense(1, name="soma")(hidden),
        },
    )
    model.compile(
        optimizer="adam",
        loss={
            "spike": keras.losses.BinaryCrossentropy(from_logits=True),
            "soma": "mse",
        },
        loss_weights={"spike": 0.5, "soma": 0.5},
    )
    data = neuronio.load(
        files=[sim_file], batch_size=2, steps_per_epoch=2, seed=0, burn_in=150
    )
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    result = neuronio.evaluate(model, sim_file)
    assert 0.0 <= result["auc"] <= 1.0 and result["soma_rmse"] > 0


@pytest.fixture(scope="module")
def shared_file(tmp_path_factory):
    """`sim_file`'s content, written once for the tests that only read it."""
    sims = [_simulation(k, t) for k, t in enumerate(OUTPUT_TIMES)]
    return _write(
        tmp_path_factory.mktemp("shared") / "sim__saved_Input"
        "Spikes_DVTs__30_outSpikes__3_simulationRuns__2_sec"
        "Duration__randomSeed_1.p",
        _content(sims),
    )


def _small_simulation():
    """A well-formed simulation with few input spikes: cheap to write."""
    return {
        "exInputSpikeTimes": {0: np.array([3.0])},
        "inhInputSpikeTimes": {1: np.array([4.0])},
        "outputSpikeTimes": np.array([5.0]),
        "somaVoltageLowRes": _voltage(0),
    }


# Values no NeuronIO array may hold: each must be a ValueError naming the
# file, the simulation and the key, not a NumPy error or a silent number.
BAD_ARRAYS = {
    "string": "abc",
    "numeric-string": "12.5",
    "bytes": b"12.5",
    "dict": {"a": 1.0},
    "none": None,
    "ragged-list": [[1.0], [2.0, 3.0]],
    "list-with-none": [1.0, None],
    "list-with-string": [1.0, "2"],
    "bools": np.array([True, False]),
    "complex": np.array([1 + 2j]),
    "nan": [np.nan, 1.0],
    "inf": [np.inf],
}


@pytest.mark.parametrize("key", ["outputSpikeTimes", "somaVoltageLowRes"])
@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_malformed_arrays_name_the_file_simulation_and_key(tmp_path, key, case):
    sims = [_small_simulation(), _small_simulation()]
    sims[1][key] = BAD_ARRAYS[case]
    path = _write(tmp_path / "bad.p", _content(sims))
    with pytest.raises(
        ValueError,
        match=re.escape(path) + r", simulation 1"
        f".*'{key}'",
    ):
        neuronio.read_file(path)


@pytest.mark.parametrize(
    "voltage, with_params",
    [
        (np.zeros(DURATION - 1), True),  # one sample short of Params' 2 s
        (np.zeros(DURATION + 1), True),
        (np.zeros(DURATION - 1), False),  # shorter than simulation 0
        (np.zeros((DURATION, 1)), True),  # 2-D
        (np.zeros(0), False),
        (-70.0, False),  # a scalar, no trace
    ],
)
def test_voltage_of_wrong_length_or_shape_names_file_and_key(
    tmp_path, voltage, with_params
):
    sims = [_small_simulation(), _small_simulation()]
    sims[1]["somaVoltageLowRes"] = voltage
    content = _content(sims)
    if not with_params:
        content["Params"] = {}
    path = _write(tmp_path / "bad.p", content)
    with pytest.raises(
        ValueError,
        match=re.escape(path) + r", simulation 1"
        r".*'somaVoltageLowRes'",
    ):
        neuronio.read_file(path)


@pytest.mark.parametrize(
    "values", ["5", {"t": 5.0}, [[1.0], [2.0, 3.0]], [1.0, None]]
)
def test_malformed_input_spike_times_name_the_segment(tmp_path, values):
    sim = _small_simulation()
    sim["exInputSpikeTimes"][7] = values
    path = _write(tmp_path / "bad.p", _content([sim]))
    with pytest.raises(
        ValueError,
        match=re.escape(path) + r".*'exInput"
        r"SpikeTimes', segment 7",
    ):
        neuronio.read_file(path)


@pytest.mark.parametrize(
    "seed, error",
    [
        (-1, ValueError),
        (1.5, TypeError),
        ("1", TypeError),
        (True, TypeError),
        (float("nan"), TypeError),
    ],
)
def test_bad_seeds_are_refused_by_name_before_any_work(
    shared_file, tmp_path, seed, error
):
    sim_file = shared_file
    with pytest.raises(error, match="`seed`"):
        neuronio.load(files=[sim_file], seed=seed)
    with pytest.raises(error, match="`seed`"):
        neuronio.NeuronIOWindows([sim_file], seed=seed)
    with pytest.raises(error, match="`seed`"):
        neuronio.simulate(str(tmp_path / "sim"), seed=seed)
    with pytest.raises(error, match="`cell_seed`"):
        neuronio.simulate(str(tmp_path / "sim"), cell_seed=seed)
    assert not os.path.exists(tmp_path / "sim")


BAD_CHOICES = [
    ("load", {"targets": "list"}, "targets"),
    ("load", {"targets": ("spike", "soma")}, "targets"),
    ("load", {"split": "valid"}, "split"),
    ("list_files", {"split": "dev"}, "split"),
]


@pytest.mark.parametrize(
    "name, kwargs, argument",
    BAD_CHOICES,
    ids=[f"{n}-{a}" for n, _, a in BAD_CHOICES],
)
def test_every_choice_is_checked_by_name(shared_file, name, kwargs, argument):
    # One message for every choice, `keras_elm.checks.check_choice`'s.
    source = {
        "load": {"files": [shared_file]},
        "list_files": {"data_dir": os.path.dirname(shared_file)},
    }[name]
    with pytest.raises(
        ValueError, match=f"`{argument}` must be one of .* Received: "
    ):
        getattr(neuronio, name)(**source, **kwargs)


def test_valid_seeds_still_work(shared_file):
    sim_file = shared_file
    for seed in (None, 0, np.int64(3), 2**40):
        data = neuronio.load(
            files=[sim_file], batch_size=1, steps_per_epoch=1, seed=seed
        )
        assert data[0][0].shape == (1, 500, neuronio.NUM_INPUTS)
    a, b = (
        neuronio.load(
            files=[sim_file], batch_size=2, steps_per_epoch=1, seed=seed
        )[0][0]
        for seed in (np.int64(3), 3)
    )
    np.testing.assert_array_equal(a, b)


# Each: a function, one bad argument, the error and the name it must give.
BAD_NUMBERS = [
    ("load", {"window": 0}, ValueError, "window"),
    ("load", {"window": 1.5}, TypeError, "window"),
    ("load", {"batch_size": 0}, ValueError, "batch_size"),
    ("load", {"batch_size": "8"}, TypeError, "batch_size"),
    ("load", {"steps_per_epoch": 0}, ValueError, "steps_per_epoch"),
    ("load", {"steps_per_epoch": 2.0}, TypeError, "steps_per_epoch"),
    ("load", {"cache_files": 0}, ValueError, "cache_files"),
    ("load", {"burn_in": -1}, ValueError, "burn_in"),
    ("load", {"burn_in": 500}, ValueError, "burn_in"),
    ("load", {"burn_in": 1.5}, TypeError, "burn_in"),
    ("evaluation_set", {"ignore_ms": -1}, ValueError, "ignore_ms"),
    ("evaluation_set", {"ignore_ms": 1.5}, TypeError, "ignore_ms"),
    ("evaluation_set", {"ignore_ms": "500"}, TypeError, "ignore_ms"),
    ("evaluation_set", {"ignore_ms": DURATION}, ValueError, "ignore_ms"),
    ("evaluation_set", {"max_spikes": -1}, ValueError, "max_spikes"),
    ("evaluation_set", {"max_spikes": 2.5}, TypeError, "max_spikes"),
    (
        "evaluation_set",
        {"batch_simulations": 0},
        ValueError,
        "batch_simulations",
    ),
    (
        "evaluation_set",
        {"batch_simulations": 1.5},
        TypeError,
        "batch_simulations",
    ),
    ("evaluation_set", {"window": 0}, ValueError, "window"),
    ("evaluation_set", {"stride": 501}, ValueError, "stride"),
    ("evaluation_set", {"stride": 350.0}, TypeError, "stride"),
    ("evaluate", {"ignore_ms": -1}, ValueError, "ignore_ms"),
    ("window_starts", {"length": 0}, ValueError, "length"),
    ("window_starts", {"length": 1.5}, TypeError, "length"),
    (
        "sliding_windows",
        {"inputs": np.zeros(10), "window": 2.5},
        TypeError,
        "window",
    ),
    (
        "stitch",
        {"predictions": np.zeros((1, 500)), "length": -1},
        ValueError,
        "length",
    ),
    ("simulate", {"num_files": 0}, ValueError, "num_files"),
    (
        "simulate",
        {"simulations_per_file": 1.5},
        TypeError,
        "simulations_per_file",
    ),
    ("simulate", {"duration_ms": 0}, ValueError, "duration_ms"),
    ("simulate", {"duration_ms": "1000"}, TypeError, "duration_ms"),
]


@pytest.mark.parametrize(
    "name, kwargs, error, argument",
    BAD_NUMBERS,
    ids=[f"{n}-{k}" for n, k, _, _ in BAD_NUMBERS],
)
def test_every_numeric_argument_is_checked_by_name(
    shared_file, tmp_path, name, kwargs, error, argument
):
    sim_file = shared_file
    calls = []

    def predict(inputs):
        calls.append(inputs.shape)
        return np.zeros(inputs.shape[:2]), np.zeros(inputs.shape[:2])

    if name == "load":
        kwargs = {"files": [sim_file], **kwargs}
    elif name in ("evaluation_set", "evaluate"):
        kwargs = {"source": sim_file, "predict_fn": predict, **kwargs}
    elif name == "window_starts":
        kwargs = {"length": 100, **kwargs}
    elif name == "simulate":
        kwargs = {"directory": str(tmp_path / "sim"), **kwargs}
    with pytest.raises(error, match=f"`{argument}`"):
        getattr(neuronio, name)(**kwargs)
    assert not calls  # refused before the model ran
    assert not os.path.exists(tmp_path / "sim")


def test_ignore_ms_just_below_the_length_evaluates_one_step(shared_file):
    result = neuronio.evaluation_set(
        shared_file, _channel_model, ignore_ms=DURATION - 1
    )
    assert result.spike_true.shape == (2, 1)


def _modes(directory):
    return {
        name: stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode)
        for name in os.listdir(directory)
    }


@pytest.mark.parametrize(
    "umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)]
)
def test_simulated_files_have_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        paths = neuronio.simulate(
            str(tmp_path), num_files=2, simulations_per_file=1, duration_ms=50
        )
    finally:
        os.umask(old)
    assert len(paths) == 2
    assert _modes(tmp_path) == {os.path.basename(p): mode for p in paths}


def _dump_half(content, f, protocol):
    f.write(pickle.dumps(content, protocol=protocol)[:100])
    raise RuntimeError("killed while writing")


def _fail_syncing(descriptor):
    raise RuntimeError("killed before the rename")


@pytest.mark.parametrize(
    "module, name, function",
    [(pickle, "dump", _dump_half), (os, "fsync", _fail_syncing)],
    ids=["while-writing", "before-the-rename"],
)
def test_a_simulate_killed_midway_keeps_the_old_file(
    tmp_path, monkeypatch, module, name, function
):
    (path,) = neuronio.simulate(
        str(tmp_path), simulations_per_file=1, duration_ms=50, seed=0
    )
    with open(path, "rb") as f:
        before = f.read()
    monkeypatch.setattr(module, name, function)
    with pytest.raises(RuntimeError, match="killed"):
        neuronio.simulate(
            str(tmp_path), simulations_per_file=1, duration_ms=50, seed=0
        )
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [os.path.basename(path)]
    with open(path, "rb") as f:
        assert f.read() == before
    assert neuronio.read_file(path)[0].duration_ms == 50


def test_simulate_into_a_file_is_a_value_error(tmp_path):
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(ValueError, match="afile"):
        neuronio.simulate(
            str(tmp_path / "afile" / "sub"),
            duration_ms=50,
            simulations_per_file=1,
        )
