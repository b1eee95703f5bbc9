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
backend; they are flattened (a flat array pairs with any shape; two
shapes of several axes must agree up to axes of size 1).
"""

import collections.abc

import numpy as np

from keras_elm.checks import check_choice as _check_choice
from keras_elm.checks import check_int as _check_int
from keras_elm.checks import check_number
from keras_elm.checks import is_number

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
            '"keras-elm[data]" (or pip install scikit-learn).'
        ) from error
    return sklearn.metrics


def _as_array(values, name):
    """`values` as a finite float64 NumPy array, or raises naming `name`."""
    if values is None or isinstance(
        values, (str, bytes, collections.abc.Mapping, collections.abc.Set)
    ):
        raise TypeError(
            f"Argument `{name}` must be an array of numbers (NumPy, a "
            f"backend tensor or a list). Received: {name}={values!r:.80} of "
            f"type {type(values).__name__}"
        )
    if not isinstance(
        values, (np.ndarray, np.generic, list, tuple, float, int)
    ):
        import keras

        message = (
            f"Argument `{name}` must be an array of numbers (NumPy, a "
            f"backend tensor or a list). Received: an object of type "
            f"{type(values).__name__}"
        )
        try:
            values = keras.ops.convert_to_numpy(values)
        except Exception as error:
            raise TypeError(message) from error
        if np.asarray(values).dtype.kind == "O":
            raise TypeError(message)
    try:
        array = np.asarray(values)
    except ValueError as error:  # ragged nested lists
        raise ValueError(
            f"Argument `{name}` must be a rectangular array of numbers; its "
            f"nested lists have different lengths."
        ) from error
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Argument `{name}` must hold numbers (bool, int or float). "
            f"Received an array of dtype {array.dtype}"
            + (
                " (it holds None, strings or other objects)."
                if array.dtype.kind == "O"
                else "."
            )
        )
    array = array.astype(np.float64)
    if array.size == 0:
        raise ValueError(f"Argument `{name}` is empty.")
    nan = int(np.isnan(array).sum())
    infinite = int(np.isinf(array).sum())
    if nan or infinite:
        found = [
            f"{count} {what}"
            for count, what in ((nan, "NaN"), (infinite, "infinite"))
            if count
        ]
        raise ValueError(
            f"Argument `{name}` must be finite; it holds "
            f"{' and '.join(found)} among {array.size} values."
        )
    return array


def _pair(true, pred, true_name, pred_name):
    """Both as flat arrays of the same size, or raises naming them."""
    true = _as_array(true, true_name)
    pred = _as_array(pred, pred_name)
    if true.size != pred.size:
        raise ValueError(
            f"Arguments `{true_name}` and `{pred_name}` must have the same "
            f"number of values. Received {true.size} and {pred.size} "
            f"(shapes {true.shape} and {pred.shape})."
        )
    # Flat values match any shape, and axes of size 1 do not count; two
    # different shapes of several axes would pair values that do not belong
    # together, as a transposed prediction would.
    true_axes = tuple(n for n in true.shape if n != 1)
    pred_axes = tuple(n for n in pred.shape if n != 1)
    if len(true_axes) > 1 and len(pred_axes) > 1 and true_axes != pred_axes:
        raise ValueError(
            f"Arguments `{true_name}` and `{pred_name}` must have the same "
            f"shape (up to axes of size 1), or one of them be flat. "
            f"Received shapes {true.shape} and {pred.shape}."
        )
    return true.ravel(), pred.ravel()


def _spikes(spike_true, spike_scores):
    spike_true, spike_scores = _pair(
        spike_true, spike_scores, "spike_true", "spike_scores"
    )
    if not np.isin(spike_true, (0.0, 1.0)).all():
        raise ValueError("Argument `spike_true` must hold only 0 and 1.")
    if spike_true.min() == spike_true.max():
        raise ValueError(
            f"Argument `spike_true` must hold both classes (0 and 1) for a "
            f"ROC curve; it holds only {int(spike_true[0])}."
        )
    return spike_true, spike_scores


def _rate_key(rate):
    return f"tpr_at_fpr_{rate:g}"


def _check_rate(name, value):
    """`value` as a float in [0, 1], or raises naming `name`."""
    return check_number(name, value, 0.0, 1.0, what="a false-positive rate")


def _check_rates(rates):
    """`false_positive_rates` as a tuple of floats in [0, 1].

    A single number is one rate, as Keras's `thresholds` arguments take it.
    """
    name = "false_positive_rates"
    if is_number(rates):
        rates = (rates,)
    elif isinstance(rates, np.ndarray):
        if rates.ndim > 1:
            raise ValueError(
                f"Argument `{name}` must be a number or a 1-D sequence of "
                f"numbers. Received an array of shape {rates.shape}"
            )
        rates = tuple(rates.reshape(-1).tolist())
    elif isinstance(rates, collections.abc.Sequence) and not isinstance(
        rates, (str, bytes)
    ):
        rates = tuple(rates)
    else:
        raise TypeError(
            f"Argument `{name}` must be a number or a sequence of numbers "
            f"in [0, 1], such as {FALSE_POSITIVE_RATES}. Received: "
            f"{name}={rates!r:.80} of type {type(rates).__name__}"
        )
    if not rates:
        raise ValueError(
            f"Argument `{name}` must hold at least one rate, such as "
            f"{FALSE_POSITIVE_RATES}. Received: {name}=()"
        )
    rates = tuple(
        _check_rate(f"{name}[{i}]", rate) for i, rate in enumerate(rates)
    )
    keys = [_rate_key(rate) for rate in rates]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ValueError(
                f"Argument `{name}` gives the entry {key!r} twice (rates "
                f"{rates[keys.index(key)]!r} and {rates[i]!r}). Pass each "
                f"rate once."
            )
    return rates


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


def tpr_at_fpr(
    spike_true,
    spike_scores,
    false_positive_rate=0.0025,
    *,
    method="interpolate",
):
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

    >>> from keras_elm.metrics import tpr_at_fpr
    >>> tpr_at_fpr([0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9], 0.25)  # a tie
    0.75
    """
    _check_choice("method", method, TPR_METHODS)
    false_positive_rate = _check_rate(
        "false_positive_rate", false_positive_rate
    )
    spike_true, spike_scores = _spikes(spike_true, spike_scores)
    fpr, tpr, _ = _sklearn_metrics().roc_curve(spike_true, spike_scores)
    return _tpr_at(fpr, tpr, false_positive_rate, method)


def spike_metrics(
    spike_true,
    spike_scores,
    *,
    false_positive_rates=FALSE_POSITIVE_RATES,
    method="interpolate",
):
    """Spike AUC and TP rates at given false-positive rates.

    Args:
        spike_true: spike targets, 0 or 1, any shape; both must occur.
        spike_scores: the model's spike scores (logits or probabilities),
            same number of values.
        false_positive_rates: FPRs to report the TPR at, each in [0, 1]
            (the paper: 0.25 % and 1 %); a sequence, or one number for one
            rate.
        method: how the TPR is read off the ROC curve, see `tpr_at_fpr`.

    Returns:
        A dict: `"auc"` (`sklearn.metrics.roc_auc_score`) and one
        `"tpr_at_fpr_<rate>"` per rate, e.g. `"tpr_at_fpr_0.0025"`,
        `"tpr_at_fpr_0.01"`.

    Example:

    >>> from keras_elm.metrics import spike_metrics
    >>> m = spike_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> sorted(m), m["auc"]
    (['auc', 'tpr_at_fpr_0.0025', 'tpr_at_fpr_0.01'], 0.75)
    """
    _check_choice("method", method, TPR_METHODS)
    false_positive_rates = _check_rates(false_positive_rates)
    spike_true, spike_scores = _spikes(spike_true, spike_scores)
    sklearn_metrics = _sklearn_metrics()
    fpr, tpr, _ = sklearn_metrics.roc_curve(spike_true, spike_scores)
    results = {
        "auc": float(sklearn_metrics.roc_auc_score(spike_true, spike_scores))
    }
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

    >>> from keras_elm.metrics import soma_metrics
    >>> soma_metrics([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 5.0])["mae"]
    0.5
    """
    soma_true, soma_pred = _pair(soma_true, soma_pred, "soma_true", "soma_pred")
    error = soma_pred - soma_true
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "explained_variance": float(
            _sklearn_metrics().explained_variance_score(soma_true, soma_pred)
        ),
    }


def neuronio_metrics(
    spike_true,
    spike_scores,
    soma_true,
    soma_pred,
    *,
    false_positive_rates=FALSE_POSITIVE_RATES,
    method="interpolate",
):
    """The paper's NeuronIO table: spike and soma metrics together.

    Args:
        spike_true: spike targets (0/1).
        spike_scores: the model's spike scores (logits or probabilities).
        soma_true: target voltages (mV from `evaluation_set`).
        soma_pred: predicted voltages.
        false_positive_rates: FPRs of the TPR entries, see
            `spike_metrics`.
        method: see `tpr_at_fpr`.

    Returns:
        A dict: `"auc"`, `"tpr_at_fpr_0.0025"`, `"tpr_at_fpr_0.01"`,
        `"soma_rmse"`, `"soma_mae"`, `"soma_explained_variance"`.

    Example:

    >>> from keras_elm.metrics import neuronio_metrics
    >>> m = neuronio_metrics([0, 1, 0, 1], [0.2, 0.9, 0.1, 0.7],
    ...                      [-70.0, -60.0, -65.0, -58.0],
    ...                      [-69.0, -61.0, -65.0, -58.0])
    >>> m["auc"], round(m["soma_rmse"], 4)
    (1.0, 0.7071)
    """
    results = spike_metrics(
        spike_true,
        spike_scores,
        false_positive_rates=false_positive_rates,
        method=method,
    )
    for key, value in soma_metrics(soma_true, soma_pred).items():
        results[f"soma_{key}"] = value
    return results


def _label(key):
    if key in _LABELS:
        return _LABELS[key]
    if key.startswith("tpr_at_fpr_"):
        try:
            rate = float(key[len("tpr_at_fpr_") :])
        except ValueError:
            return key
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

    >>> from keras_elm.metrics import format_table
    >>> print(format_table({"auc": 0.99151, "soma_rmse": 0.564}))
    metric    | value
    ----------|-------
    spike AUC | 0.9915
    soma RMSE | 0.5640
    """
    if not isinstance(metrics, collections.abc.Mapping):
        raise TypeError(
            f"Argument `metrics` must be a dict of metrics, or a dict of "
            f"such dicts. Received: metrics={metrics!r:.80} of type "
            f"{type(metrics).__name__}"
        )
    if not metrics:
        raise ValueError(
            f"Argument `metrics` must be a non-empty dict. Received: "
            f"{metrics!r}"
        )
    digits = _check_int("digits", digits, 0)
    nested = [isinstance(v, collections.abc.Mapping) for v in metrics.values()]
    if all(nested):
        columns = {str(name): column for name, column in metrics.items()}
        where = {str(name): f"metrics[{name!r}]" for name in metrics}
    elif any(nested):
        raise ValueError(
            f"Argument `metrics` must map metric names to numbers, or column "
            f"names to such dicts, not both. Received the keys "
            f"{list(metrics)} with dicts at "
            f"{[k for k, n in zip(metrics, nested) if n]} only."
        )
    else:
        columns = {"value": metrics}
        where = {"value": "metrics"}
    for name, column in columns.items():
        for key, value in column.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"Argument `metrics` must have metric names (strings) as "
                    f"keys; {where[name]} has the key {key!r} of type "
                    f"{type(key).__name__}."
                )
            if value is not None and not is_number(value):
                raise TypeError(
                    f"Argument `metrics` must hold numbers (None prints as "
                    f'"-"); {where[name]}[{key!r}] is {value!r:.80} of '
                    f"type {type(value).__name__}."
                )
    keys = []
    for column in columns.values():
        keys += [key for key in column if key not in keys]
    if not keys:
        raise ValueError(
            f"Argument `metrics` holds no metric: every column is empty. "
            f"Received: {metrics!r:.80}"
        )

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        return f"{float(value):.{digits}f}"

    rows = [["metric", *columns]]
    rows += [
        [_label(key), *(cell(c.get(key)) for c in columns.values())]
        for key in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(
            text.ljust(width) for text, width in zip(row, widths)
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-|-".join("-" * width for width in widths))
    return "\n".join(lines)
