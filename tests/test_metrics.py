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
        assert result["auc"] == pytest.approx(roc_auc_score(labels, scores),
                                              abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_tpr_interpolates_the_roc_at_the_exact_fpr(rng, ties):
    labels, scores = _spike_data(rng, ties=ties)
    result = metrics.spike_metrics(labels, scores,
                                   false_positive_rates=(0.0025, 0.01, 0.3))
    for rate in (0.0025, 0.01, 0.3):
        assert result[f"tpr_at_fpr_{rate:g}"] == pytest.approx(
            _brute_force_tpr(labels, scores, rate), abs=1e-12)


def test_tpr_on_a_tie_is_linear_between_the_thresholds():
    # Points (0, 0.5) and (0.5, 1): at FPR 0.25 the line is at 0.75.
    assert metrics.tpr_at_fpr([0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9],
                              0.25) == pytest.approx(0.75)
    assert metrics.tpr_at_fpr([0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9],
                              0.0) == pytest.approx(0.5)


def test_nearest_method_is_the_authors_rule(rng):
    labels, scores = _spike_data(rng, ties=True)
    fpr, tpr, _ = roc_curve(labels, scores)
    for rate in (0.0025, 0.01):
        expected = tpr[max(1, int(np.argmin(np.abs(fpr - rate))))]
        assert metrics.tpr_at_fpr(labels, scores, rate,
                                  method="nearest") == expected


def test_soma_metrics_against_numpy_and_sklearn(rng):
    true = rng.normal(-65.0, 4.0, (7, 300))
    pred = true + rng.normal(0.5, 1.0, true.shape)
    result = metrics.soma_metrics(true, pred)
    error = pred - true
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)))
    assert result["mae"] == pytest.approx(np.mean(np.abs(error)))
    assert result["explained_variance"] == pytest.approx(
        explained_variance_score(true.ravel(), pred.ravel()))


def test_backend_tensors_give_the_numpy_results(rng):
    labels, scores = _spike_data(rng, size=5000, rate=0.05)
    true = rng.normal(size=5000)
    pred = true + rng.normal(size=5000)
    expected = metrics.neuronio_metrics(labels, scores, true, pred)
    tensors = [keras.ops.convert_to_tensor(x.astype("float32"))
               for x in (labels, scores, true, pred)]
    result = metrics.neuronio_metrics(*tensors)
    assert sorted(result) == sorted(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-5), key


def test_neuronio_metrics_keys_and_shapes_are_flattened(rng):
    labels, scores = _spike_data(rng, size=4000, rate=0.05)
    result = metrics.neuronio_metrics(
        labels.reshape(8, 500), scores.reshape(8, 500, 1),
        scores.reshape(8, 500), scores.reshape(8, 500) * 2)
    assert list(result) == ["auc", "tpr_at_fpr_0.0025", "tpr_at_fpr_0.01",
                            "soma_rmse", "soma_mae",
                            "soma_explained_variance"]
    assert result["soma_rmse"] == pytest.approx(np.sqrt(np.mean(scores ** 2)))


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
    table = metrics.format_table({"auc": 0.99151, "tpr_at_fpr_0.0025": 0.5,
                                  "soma_rmse": 0.564})
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "|", "value"]
    assert "spike TPR at 0.25% FPR | 0.5000" in table
    assert lines[2].startswith("spike AUC") and lines[2].endswith("0.9915")
    wide = metrics.format_table({"ours": {"auc": 0.9, "soma_rmse": 1.0},
                                 "paper": {"auc": 0.9915}}, digits=2)
    assert wide.splitlines()[0].split() == ["metric", "|", "ours", "|",
                                            "paper"]
    assert wide.splitlines()[3].split() == ["soma", "RMSE", "|", "1.00", "|",
                                            "-"]
    with pytest.raises(ValueError, match="metrics"):
        metrics.format_table({})
