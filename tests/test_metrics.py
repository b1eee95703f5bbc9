"""`keras_elm.metrics` against scikit-learn and brute force."""

import sys

import keras
import numpy as np
import pytest
from sklearn.metrics import explained_variance_score
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve

from keras_elm import metrics


def _spike_data(rng, size=20000, rate=0.02, ties=False):
    labels = (rng.random(size) < rate).astype(np.float32)
    scores = 1.5 * labels + rng.standard_normal(size)
    if ties:  # coarse scores: many thresholds hold both classes
        scores = np.round(scores * 2) / 2
    return labels, scores


def _brute_force_tpr(labels, scores, rate):
    """The piecewise-linear ROC through every threshold's point, at `rate`."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    candidates = []
    for f0, t0, f1, t1 in zip(fpr[:-1], tpr[:-1], fpr[1:], tpr[1:]):
        if f0 == f1 == rate:
            candidates += [t0, t1]
        elif f0 <= rate <= f1 and f1 > f0:
            candidates.append(t0 + (t1 - t0) * (rate - f0) / (f1 - f0))
    return max(candidates)


def test_auc_equals_roc_auc_score(rng):
    for ties in (False, True):
        labels, scores = _spike_data(rng, ties=ties)
        result = metrics.spike_metrics(labels, scores)
        assert result["auc"] == pytest.approx(
            roc_auc_score(labels, scores), abs=1e-12
        )


@pytest.mark.parametrize("ties", [False, True])
def test_tpr_interpolates_the_roc_at_the_exact_fpr(rng, ties):
    labels, scores = _spike_data(rng, ties=ties)
    rates = (0.0, 0.0025, 0.01, 0.3, 1.0)  # 0 and 1 included
    result = metrics.spike_metrics(labels, scores, false_positive_rates=rates)
    for rate in rates:
        assert result[f"tpr_at_fpr_{rate:g}"] == pytest.approx(
            _brute_force_tpr(labels, scores, rate), abs=1e-12
        )


def test_tpr_on_a_tie_is_linear_between_the_thresholds():
    # Points (0, 0.5) and (0.5, 1): at FPR 0.25 the line is at 0.75.
    assert metrics.tpr_at_fpr(
        [0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9], 0.25
    ) == pytest.approx(0.75)
    assert metrics.tpr_at_fpr(
        [0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9], 0.0
    ) == pytest.approx(0.5)


def test_nearest_method_is_the_authors_rule(rng):
    labels, scores = _spike_data(rng, ties=True)
    fpr, tpr, _ = roc_curve(labels, scores)
    for rate in (0.0025, 0.01):
        expected = tpr[max(1, int(np.argmin(np.abs(fpr - rate))))]
        assert (
            metrics.tpr_at_fpr(labels, scores, rate, method="nearest")
            == expected
        )


def test_soma_metrics_against_numpy_and_sklearn(rng):
    true = rng.normal(-65.0, 4.0, (7, 300))
    pred = true + rng.normal(0.5, 1.0, true.shape)
    result = metrics.soma_metrics(true, pred)
    error = pred - true
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)))
    assert result["mae"] == pytest.approx(np.mean(np.abs(error)))
    assert result["explained_variance"] == pytest.approx(
        explained_variance_score(true.ravel(), pred.ravel())
    )


def test_backend_tensors_give_the_numpy_results(rng):
    labels, scores = _spike_data(rng, size=5000, rate=0.05)
    true = rng.normal(size=5000)
    pred = true + rng.normal(size=5000)
    expected = metrics.neuronio_metrics(labels, scores, true, pred)
    tensors = [
        keras.ops.convert_to_tensor(x.astype("float32"))
        for x in (labels, scores, true, pred)
    ]
    result = metrics.neuronio_metrics(*tensors)
    assert sorted(result) == sorted(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-5), key


def test_neuronio_metrics_keys_and_shapes_are_flattened(rng):
    labels, scores = _spike_data(rng, size=4000, rate=0.05)
    result = metrics.neuronio_metrics(
        labels.reshape(8, 500),
        scores.reshape(8, 500, 1),
        scores.reshape(8, 500),
        scores.reshape(8, 500) * 2,
    )
    assert list(result) == [
        "auc",
        "tpr_at_fpr_0.0025",
        "tpr_at_fpr_0.01",
        "soma_rmse",
        "soma_mae",
        "soma_explained_variance",
    ]
    assert result["soma_rmse"] == pytest.approx(np.sqrt(np.mean(scores**2)))


def test_size_mismatch_names_both_arguments():
    with pytest.raises(ValueError, match="spike_true.*spike_scores"):
        metrics.spike_metrics([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="soma_true.*soma_pred"):
        metrics.soma_metrics(np.zeros(4), np.zeros(5))


def test_one_class_only_is_rejected():
    with pytest.raises(ValueError, match="spike_true.*both classes"):
        metrics.spike_metrics(np.zeros(10), np.arange(10.0))


def test_labels_other_than_zero_and_one_are_rejected():
    with pytest.raises(ValueError, match="spike_true.*only 0 and 1"):
        metrics.spike_metrics([0, 1, 2], [0.1, 0.2, 0.3])


def test_nan_is_rejected_naming_the_argument():
    with pytest.raises(ValueError, match="spike_scores.*finite"):
        metrics.spike_metrics([0, 1, 0], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="soma_pred.*finite"):
        metrics.soma_metrics([1.0, 2.0], [1.0, np.inf])


def test_bad_method_and_rate_are_rejected():
    with pytest.raises(ValueError, match="method"):
        metrics.tpr_at_fpr([0, 1], [0.1, 0.9], 0.01, method="closest")
    with pytest.raises(ValueError, match="false_positive_rate"):
        metrics.tpr_at_fpr([0, 1], [0.1, 0.9], 1.5)


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    with pytest.raises(ImportError, match=r'pip install "keras-elm\[data\]"'):
        metrics.spike_metrics([0, 1], [0.1, 0.9])


def test_format_table_prints_labels_values_and_columns():
    table = metrics.format_table(
        {"auc": 0.99151, "tpr_at_fpr_0.0025": 0.5, "soma_rmse": 0.564}
    )
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "|", "value"]
    assert "spike TPR at 0.25% FPR | 0.5000" in table
    assert lines[2].startswith("spike AUC") and lines[2].endswith("0.9915")
    wide = metrics.format_table(
        {"ours": {"auc": 0.9, "soma_rmse": 1.0}, "paper": {"auc": 0.9915}},
        digits=2,
    )
    assert wide.splitlines()[0].split() == ["metric", "|", "ours", "|", "paper"]
    assert wide.splitlines()[3].split() == [
        "soma",
        "RMSE",
        "|",
        "1.00",
        "|",
        "-",
    ]
    with pytest.raises(ValueError, match="metrics"):
        metrics.format_table({})


# Each function and argument that takes an array: (call, name).
ARRAY_ARGUMENTS = [
    (lambda x: metrics.spike_metrics(x, [0.1, 0.9, 0.2, 0.8]), "spike_true"),
    (lambda x: metrics.spike_metrics([0, 1, 0, 1], x), "spike_scores"),
    (lambda x: metrics.tpr_at_fpr(x, [0.1, 0.9, 0.2, 0.8]), "spike_true"),
    (lambda x: metrics.tpr_at_fpr([0, 1, 0, 1], x), "spike_scores"),
    (lambda x: metrics.soma_metrics(x, [1.0, 2.0, 3.0, 4.0]), "soma_true"),
    (lambda x: metrics.soma_metrics([1.0, 2.0, 3.0, 4.0], x), "soma_pred"),
    (
        lambda x: metrics.neuronio_metrics(
            [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [1.0, 2.0, 3.0, 4.0], x
        ),
        "soma_pred",
    ),
]


@pytest.mark.parametrize("call, name", ARRAY_ARGUMENTS)
@pytest.mark.parametrize(
    "value, error, match",
    [
        (None, TypeError, "must be an array of numbers"),
        ({"a": 1}, TypeError, "must be an array of numbers"),
        ("0101", TypeError, "must be an array of numbers"),
        (b"\x00\x01", TypeError, "must be an array of numbers"),
        ({0, 1}, TypeError, "must be an array of numbers"),
        (object(), TypeError, "must be an array of numbers"),
        ([0, None, 1, 0], TypeError, "must hold numbers"),
        (["0", "1", "0", "1"], TypeError, "must hold numbers"),
        ([1j, 0, 1, 0], TypeError, "must hold numbers"),
        ([[0, 1], [0]], ValueError, "rectangular"),
        ([], ValueError, "is empty"),
        ([0, 1, 0], ValueError, "same number of values"),
        (np.zeros((2, 2, 1, 2)), ValueError, "same number of values"),
    ],
)
def test_bad_arrays_are_rejected_naming_the_argument(
    call, name, value, error, match
):
    with pytest.raises(error, match=match) as info:
        call(value)
    assert f"`{name}`" in str(info.value)
    assert "NaN" not in str(info.value)


@pytest.mark.parametrize("call, name", ARRAY_ARGUMENTS)
@pytest.mark.parametrize(
    "values, counts",
    [
        ([np.nan, 1.0, 0.0, 1.0], "1 NaN among 4 values"),
        ([np.nan, np.nan, np.inf, 0.0], "2 NaN and 1 infinite among 4 values"),
        ([-np.inf, 1.0, 0.0, 1.0], "holds 1 infinite among 4 values"),
    ],
)
def test_nan_and_infinite_values_are_counted_apart(call, name, values, counts):
    with pytest.raises(ValueError, match=f"`{name}` must be finite") as info:
        call(values)
    assert counts in str(info.value)


@pytest.mark.parametrize(
    "true_shape, pred_shape",
    [
        ((3, 4), (4, 3)),
        ((2, 6), (3, 4)),
        ((3, 4, 1), (1, 4, 3)),
    ],
)
def test_different_shapes_of_several_axes_are_rejected(true_shape, pred_shape):
    true = np.arange(12.0).reshape(true_shape)
    with pytest.raises(ValueError, match="soma_true.*soma_pred.*shape"):
        metrics.soma_metrics(true, np.ones(pred_shape))


@pytest.mark.parametrize(
    "true_shape, pred_shape",
    [
        ((12,), (3, 4)),
        ((3, 4), (12, 1)),
        ((3, 4), (3, 4, 1)),
        ((1, 3, 4), (3, 1, 4)),
    ],
)
def test_flat_values_and_axes_of_size_one_pair_with_any_shape(
    true_shape, pred_shape
):
    true = np.arange(12.0)
    result = metrics.soma_metrics(
        true.reshape(true_shape), (true + 1).reshape(pred_shape)
    )
    assert result["mae"] == pytest.approx(1.0)


BAD_RATES = [
    (-0.1, ValueError),
    (2.0, ValueError),
    (1.0001, ValueError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    ("0.01", TypeError),
    (None, TypeError),
    (True, TypeError),
    ([0.01], TypeError),
    ({"rate": 0.01}, TypeError),
]


@pytest.mark.parametrize("rate, error", BAD_RATES)
def test_tpr_at_fpr_rejects_bad_rates(rate, error):
    with pytest.raises(error, match="`false_positive_rate` must be"):
        metrics.tpr_at_fpr([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], rate)


@pytest.mark.parametrize(
    "rates, error",
    [
        # Each bad rate, alone and among good ones.
        *[
            ((0.01, rate), error)
            for rate, error in BAD_RATES
            if not isinstance(rate, (list, dict))
        ],
        ((-0.1, 2.0), ValueError),
        (np.array([0.01, np.nan]), ValueError),
        ([[0.01]], TypeError),
        (np.zeros((1, 2)), ValueError),
        ((), ValueError),
        ([], ValueError),
        (None, TypeError),
        ("0.01", TypeError),
        ({"rate": 0.01}, TypeError),
        ({0.01}, TypeError),
        (-0.5, ValueError),
        (float("nan"), ValueError),
        ((0.01, 0.01), ValueError),
        ((0.01, 0.0100000001), ValueError),
    ],
)
@pytest.mark.parametrize("function", ["spike_metrics", "neuronio_metrics"])
def test_bad_false_positive_rates_are_rejected_naming_them(
    function, rates, error
):
    arrays = ([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    if function == "neuronio_metrics":
        arrays += ([1.0, 2.0, 3.0, 4.0],) * 2
    with pytest.raises(error, match="`false_positive_rates"):
        getattr(metrics, function)(*arrays, false_positive_rates=rates)


def test_one_number_is_one_false_positive_rate(rng):
    labels, scores = _spike_data(rng, size=4000, rate=0.05)
    one = metrics.spike_metrics(labels, scores, false_positive_rates=0.01)
    both = metrics.spike_metrics(
        labels, scores, false_positive_rates=np.array([0.01, 0.3])
    )
    assert list(one) == ["auc", "tpr_at_fpr_0.01"]
    assert one["tpr_at_fpr_0.01"] == both["tpr_at_fpr_0.01"]


@pytest.mark.parametrize("method", ["nearest", "interpolate"])
def test_the_ends_of_the_roc_curve(method):
    labels = [0, 1, 0, 1, 0, 1]
    scores = [0.1, 0.9, 0.5, 0.5, 0.2, 0.3]
    # At FPR 0 only the 0.9 spike is found; at FPR 1 every spike is.
    assert metrics.tpr_at_fpr(
        labels, scores, 0.0, method=method
    ) == pytest.approx(1 / 3)
    assert metrics.tpr_at_fpr(labels, scores, 1.0, method=method) == 1.0
    assert metrics.tpr_at_fpr(labels, scores, 0) == pytest.approx(1 / 3)


@pytest.mark.parametrize("method", ["closest", None, ["nearest"], 1])
def test_bad_methods_are_rejected(method):
    for call in (
        lambda: metrics.tpr_at_fpr([0, 1], [0.1, 0.9], method=method),
        lambda: metrics.spike_metrics([0, 1], [0.1, 0.9], method=method),
    ):
        with pytest.raises(ValueError, match="`method` must be one of"):
            call()


@pytest.mark.parametrize(
    "table, error, match",
    [
        ({"auc": "high"}, TypeError, r"metrics\['auc'\] is 'high'"),
        ({"auc": True}, TypeError, r"metrics\['auc'\] is True"),
        ({"auc": [0.9]}, TypeError, r"metrics\['auc'\] is \[0.9\]"),
        ({"auc": np.array(0.9)}, TypeError, r"metrics\['auc'\]"),
        (
            {"ours": {"auc": "high"}},
            TypeError,
            r"metrics\['ours'\]\['auc'\] is 'high'",
        ),
        ({"ours": {"auc": 0.9}, "paper": 0.99}, ValueError, "not both"),
        ({1: 0.9}, TypeError, "metric names"),
        ({"ours": {2: 0.9}}, TypeError, r"metrics\['ours'\] has the key 2"),
        ({"ours": {}}, ValueError, "no metric"),
        ({}, ValueError, "non-empty"),
        (None, TypeError, "must be a dict"),
        ([("auc", 0.9)], TypeError, "must be a dict"),
        ("auc", TypeError, "must be a dict"),
    ],
)
def test_format_table_rejects_anything_but_numbers(table, error, match):
    with pytest.raises(error, match=match) as info:
        metrics.format_table(table)
    assert "metrics" in str(info.value)


@pytest.mark.parametrize(
    "digits, error",
    [
        ("2", TypeError),
        (2.0, TypeError),
        (None, TypeError),
        (-1, ValueError),
    ],
)
def test_format_table_rejects_bad_digits(digits, error):
    with pytest.raises(error, match="`digits` must be"):
        metrics.format_table({"auc": 0.9}, digits=digits)


def test_format_table_prints_numpy_numbers_missing_entries_and_any_key():
    table = metrics.format_table(
        {
            "ours": {
                "auc": np.float32(0.5),
                "steps": np.int64(3),
                "tpr_at_fpr_x": 1.0,
            },
            7: {"auc": None},
        },
        digits=1,
    )
    lines = [line.split("|") for line in table.splitlines()]
    assert [cell.strip() for cell in lines[0]] == ["metric", "ours", "7"]
    assert [cell.strip() for cell in lines[2]] == ["spike AUC", "0.5", "-"]
    assert [cell.strip() for cell in lines[3]] == ["steps", "3", "-"]
    assert [cell.strip() for cell in lines[4]] == ["tpr_at_fpr_x", "1.0", "-"]
