"""NeuronIO metrics: somatic spike prediction and somatic voltage.

The paper reports, after the evaluation protocol of
`keras_elm.data.neuronio.evaluation_set` (stitched sliding windows, the
first 500 ms left out):

- spike: the area under the ROC curve and the true-positive rate at 0.25 %
  and 1 % false positives, from the model's spike scores (logits or
  probabilities: any increasing function of them gives the same numbers);
- soma: RMSE, MAE (in the units of the inputs; mV from `evaluation_set`)
  and explained variance (a fraction; the authors print it in percent).

scikit-learn computes the ROC curve and the scores (`pip install
"keras-elm[data]"`). Inputs may be NumPy arrays or tensors of any Keras
backend; they are flattened.
"""

import numpy as np

FALSE_POSITIVE_RATES = (0.0025, 0.01)
TPR_METHODS = ("interpolate", "nearest")

_LABELS = {
    "auc": "spike AUC",
    "soma_rmse": "soma RMSE",
    "soma_mae": "soma MAE",
    "soma_explained_variance": "soma explained variance",
    "rmse": "RMSE",
    "mae": "MAE",
    "explained_variance": "explained variance",
}


def _sklearn_metrics():
    try:
        import sklearn.metrics
    except ImportError as error:
        raise ImportError(
            "keras_elm.metrics needs scikit-learn: pip install "
            "\"keras-elm[data]\" (or pip install scikit-learn)."
        ) from error
    return sklearn.metrics


def _as_array(values, name):
    """`values` as a flat finite float64 NumPy array."""
    if not isinstance(values, (np.ndarray, np.generic, list, tuple, float, int)):
        import keras

        values = keras.ops.convert_to_numpy(values)
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"Argument `{name}` is empty.")
    if not np.isfinite(array).all():
        raise ValueError(
            f"Argument `{name}` must be finite; it holds "
            f"{int((~np.isfinite(array)).sum())} NaN or infinite values."
        )
    return array


def _pair(true, pred, true_name, pred_name):
    true = _as_array(true, true_name)
    pred = _as_array(pred, pred_name)
    if true.size != pred.size:
        raise ValueError(
            f"Arguments `{true_name}` and `{pred_name}` must have the same "
            f"number of values. Received {true.size} and {pred.size}."
        )
    return true, pred


def _spikes(spike_true, spike_scores):
    spike_true, spike_scores = _pair(spike_true, spike_scores, "spike_true",
                                     "spike_scores")
    if not np.isin(spike_true, (0.0, 1.0)).all():
        raise ValueError("Argument `spike_true` must hold only 0 and 1.")
    if spike_true.min() == spike_true.max():
        raise ValueError(
            f"Argument `spike_true` must hold both classes (0 and 1) for a "
            f"ROC curve; it holds only {int(spike_true[0])}."
        )
    return spike_true, spike_scores


def _tpr_at(fpr, tpr, rate, method):
    if method == "nearest":
        # The authors' rule: the ROC point whose FPR is closest, never the
        # curve's first point (FPR 0, TPR 0).
        return float(tpr[max(1, int(np.argmin(np.abs(fpr - rate))))])
    # The last point with FPR <= rate is the top of any vertical step there.
    i = int(np.searchsorted(fpr, rate, side="right")) - 1
    if fpr[i] == rate or i == fpr.size - 1:
        return float(tpr[i])
    share = (rate - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(tpr[i] + share * (tpr[i + 1] - tpr[i]))


def tpr_at_fpr(spike_true, spike_scores, false_positive_rate=0.0025, *,
               method="interpolate"):
    """The true-positive rate of the spike scores at a false-positive rate.

    Args:
        spike_true: spike targets, 0 or 1, any shape.
        spike_scores: the model's scores, same size (higher: more likely
            a spike).
        false_positive_rate: the FPR to read the ROC curve at, in [0, 1].
        method: `"interpolate"` (default): the ROC curve of
            `sklearn.metrics.roc_curve` taken as straight lines between its
            points (each is a threshold; a point on a line is a random mix
            of its two thresholds), read at exactly that FPR; where the
            curve rises vertically there, its top. `"nearest"`: the TPR of
            the curve's point with the nearest FPR (skipping the first,
            (0, 0)), the rule of the authors' evaluation code; the two
            differ little on the millions of steps of a test set.

    Returns:
        The TPR, a float in [0, 1].

    Example:

    >>> tpr_at_fpr([0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9], 0.25)  # a tie
    0.75
    """
    if method not in TPR_METHODS:
        raise ValueError(
            f"Argument `method` must be one of {TPR_METHODS}. Received: "
            f"{method!r}"
        )
    if not 0.0 <= false_positive_rate <= 1.0:
        raise ValueError(
            f"Argument `false_positive_rate` must be in [0, 1]. Received: "
            f"{false_positive_rate!r}"
        )
    spike_true, spike_scores = _spikes(spike_true, spike_scores)
    fpr, tpr, _ = _sklearn_metrics().roc_curve(spike_true, spike_scores)
    return _tpr_at(fpr, tpr, false_positive_rate, method)


def _rate_key(rate):
    return f"tpr_at_fpr_{rate:g}"


def spike_metrics(spike_true, spike_scores, *,
                  false_positive_rates=FALSE_POSITIVE_RATES,
                  method="interpolate"):
    """Spike AUC and TP rates at given false-positive rates.

    Args:
        spike_true: spike targets, 0 or 1, any shape; both must occur.
        spike_scores: the model's spike scores (logits or probabilities),
            same number of values.
        false_positive_rates: FPRs to report the TPR at (the paper: 0.25 %
            and 1 %).
        method: how the TPR is read off the ROC curve, see `tpr_at_fpr`.

    Returns:
        A dict: `"auc"` (`sklearn.metrics.roc_auc_score`) and one
        `"tpr_at_fpr_<rate>"` per rate, e.g. `"tpr_at_fpr_0.0025"`,
        `"tpr_at_fpr_0.01"`.

    Example:

    >>> m = spike_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> sorted(m), m["auc"]
    (['auc', 'tpr_at_fpr_0.0025', 'tpr_at_fpr_0.01'], 0.75)
    """
    if method not in TPR_METHODS:
        raise ValueError(
            f"Argument `method` must be one of {TPR_METHODS}. Received: "
            f"{method!r}"
        )
    spike_true, spike_scores = _spikes(spike_true, spike_scores)
    sklearn_metrics = _sklearn_metrics()
    fpr, tpr, _ = sklearn_metrics.roc_curve(spike_true, spike_scores)
    results = {"auc": float(sklearn_metrics.roc_auc_score(spike_true,
                                                          spike_scores))}
    for rate in false_positive_rates:
        results[_rate_key(rate)] = _tpr_at(fpr, tpr, rate, method)
    return results


def soma_metrics(soma_true, soma_pred):
    """RMSE, MAE and explained variance of a soma voltage prediction.

    Args:
        soma_true: target voltages, any shape.
        soma_pred: predicted voltages, same number of values.

    Returns:
        A dict `{"rmse", "mae", "explained_variance"}`: the errors in the
        inputs' units, the explained variance
        (`sklearn.metrics.explained_variance_score`, 1 - var(error) /
        var(target)) as a fraction.

    Example:

    >>> soma_metrics([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 5.0])["mae"]
    0.5
    """
    soma_true, soma_pred = _pair(soma_true, soma_pred, "soma_true",
                                 "soma_pred")
    error = soma_pred - soma_true
    return {
        "rmse": float(np.sqrt(np.mean(error ** 2))),
        "mae": float(np.mean(np.abs(error))),
        "explained_variance": float(
            _sklearn_metrics().explained_variance_score(soma_true, soma_pred)),
    }


def neuronio_metrics(spike_true, spike_scores, soma_true, soma_pred, *,
                     false_positive_rates=FALSE_POSITIVE_RATES,
                     method="interpolate"):
    """The paper's NeuronIO table: spike and soma metrics together.

    Args:
        spike_true: spike targets (0/1).
        spike_scores: the model's spike scores (logits or probabilities).
        soma_true: target voltages (mV from `evaluation_set`).
        soma_pred: predicted voltages.
        false_positive_rates: FPRs of the TPR entries.
        method: see `tpr_at_fpr`.

    Returns:
        A dict: `"auc"`, `"tpr_at_fpr_0.0025"`, `"tpr_at_fpr_0.01"`,
        `"soma_rmse"`, `"soma_mae"`, `"soma_explained_variance"`.

    Example:

    >>> m = neuronio_metrics([0, 1, 0, 1], [0.2, 0.9, 0.1, 0.7],
    ...                      [-70.0, -60.0, -65.0, -58.0],
    ...                      [-69.0, -61.0, -65.0, -58.0])
    >>> m["auc"], round(m["soma_rmse"], 4)
    (1.0, 0.7071)
    """
    results = spike_metrics(spike_true, spike_scores,
                            false_positive_rates=false_positive_rates,
                            method=method)
    for key, value in soma_metrics(soma_true, soma_pred).items():
        results[f"soma_{key}"] = value
    return results


def _label(key):
    if key in _LABELS:
        return _LABELS[key]
    if key.startswith("tpr_at_fpr_"):
        rate = float(key[len("tpr_at_fpr_"):])
        return f"spike TPR at {100 * rate:g}% FPR"
    return key


def format_table(metrics, *, digits=4):
    """A printable table of metrics, one row per metric.

    Args:
        metrics: a dict of metrics (`neuronio_metrics`), or a dict from a
            column name (a model, a run, "paper") to such dicts, for
            several columns side by side; a missing entry prints as "-".
        digits: decimals of the values.

    Returns:
        The table as a string, without a trailing newline.

    Example:

    >>> print(format_table({"auc": 0.99151, "soma_rmse": 0.564}))
    metric    | value
    ----------|-------
    spike AUC | 0.9915
    soma RMSE | 0.5640
    """
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(
            f"Argument `metrics` must be a non-empty dict. Received: "
            f"{metrics!r}"
        )
    if all(isinstance(v, dict) for v in metrics.values()):
        columns = dict(metrics)
    else:
        columns = {"value": metrics}
    keys = []
    for column in columns.values():
        keys += [key for key in column if key not in keys]

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return str(int(value))
        return f"{float(value):.{digits}f}"

    rows = [["metric", *columns]]
    rows += [[_label(key), *(cell(c.get(key)) for c in columns.values())]
             for key in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(text.ljust(width) for text, width in zip(row, widths))
             .rstrip() for row in rows]
    lines.insert(1, "-|-".join("-" * width for width in widths))
    return "\n".join(lines)
