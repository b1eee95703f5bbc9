"""Argument checks: one message style, one exception policy.

A bad type raises `TypeError` (a float or a bool where an integer is due, a
string where a number is due); a value of the right type that is out of
range, not finite or not among the choices raises `ValueError`. Every
message names the argument, says what was expected and shows what was
received. Bools are never numbers here (`True == 1` in Python); NumPy
integers and floats count as Python ones. Each check returns the value in a
plain Python type (`int`, `float`), so that a layer's config stays JSON.

This module imports nothing from `keras_elm`, so that every module can use
it without an import cycle.
"""

import math
import os

import numpy as np


def is_number(value):
    """Whether `value` is a real number: an int or a float, not a bool.

    Args:
        value: anything.

    Returns:
        True for Python and NumPy integers and floats (NaN and inf
        included), False for bools and everything else.

    Example:

    >>> is_number(3), is_number(np.float32(0.5)), is_number(True)
    (True, True, False)
    """
    return isinstance(
        value, (int, float, np.integer, np.floating)
    ) and not isinstance(value, (bool, np.bool_))


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_int(name, value, minimum, maximum=None):
    """`value` as a Python int, or raises naming `name`.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        minimum: the smallest value allowed.
        maximum: the largest value allowed (None: no limit).

    Returns:
        `value` as an `int`.

    Raises:
        TypeError: `value` is not an integer (bools are not).
        ValueError: `value` is below `minimum` or above `maximum`.

    Example:

    >>> check_int("epochs", np.int64(3), 1)
    3
    >>> check_int("epochs", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be at least 1. Received: epochs=0
    """
    if not _is_int(value):
        raise TypeError(
            f"`{name}` must be an integer. Received: {name}={value!r} of "
            f"type {type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be at least {minimum}. Received: {name}={value}"
        )
    if maximum is not None and value > maximum:
        raise ValueError(
            f"`{name}` must be at most {maximum}. Received: {name}={value}"
        )
    return int(value)


def check_choice(name, value, choices):
    """Raises a `ValueError` naming `name` unless `value` is in `choices`.

    A value of any type that is not one of the choices is a bad value, as
    for Keras's string options (`padding="same"`).

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        choices: the values allowed.

    Raises:
        ValueError: `value` is not in `choices`.

    Example:

    >>> check_choice("split", "test", ("train", "test"))
    >>> check_choice("split", "dev", ("train", "test"))
    Traceback (most recent call last):
    ...
    ValueError: `split` must be one of ('train', 'test'). Received: split='dev'
    """
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}. Received: "
            f"{name}={value!r}"
        )


def check_positive_int(name, value, allow_none=False):
    """`value` as a Python int >= 1 (or None if allowed), or raises.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        allow_none: whether None is allowed (and returned).

    Returns:
        `value` as an `int`, or None.

    Raises:
        TypeError: `value` is not an integer (bools are not), or is None
            where None is not allowed.
        ValueError: `value` is below 1.

    Example:

    >>> check_positive_int("units", 8)
    8
    >>> check_positive_int("output_units", None, allow_none=True) is None
    True
    >>> check_positive_int("units", 2.0)
    Traceback (most recent call last):
    ...
    TypeError: Argument `units` must be a positive integer. Received: units=2.0
    """
    if value is None and allow_none:
        return None
    if not _is_int(value):
        raise TypeError(
            f"Argument `{name}` must be a positive integer. "
            f"Received: {name}={value!r}"
        )
    if value < 1:
        raise ValueError(
            f"Argument `{name}` must be a positive integer (>= 1). "
            f"Received: {name}={value}"
        )
    return int(value)


def check_positive_float(name, value):
    """`value` as a finite Python float > 0, or raises naming `name`.

    Args:
        name: the argument's name, for the message.
        value: the value to check, an int or a float.

    Returns:
        `value` as a `float`.

    Raises:
        TypeError: `value` is not a number (bools and strings are not).
        ValueError: `value` is not above 0, or is NaN or infinite.

    Example:

    >>> check_positive_float("delta_t", 2)
    2.0
    >>> check_positive_float("delta_t", float("inf"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Argument `delta_t` must be a finite number > 0. Received: ...
    """
    if not is_number(value):
        raise TypeError(
            f"Argument `{name}` must be a number > 0. Received: "
            f"{name}={value!r} of type {type(value).__name__}"
        )
    # `not value > 0` also catches NaN; inf would make NaN outputs.
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"Argument `{name}` must be a finite number > 0. "
            f"Received: {name}={value}"
        )
    return float(value)


def check_non_negative_float(name, value):
    """`value` as a finite Python float >= 0, or raises naming `name`.

    Args:
        name: the argument's name, for the message.
        value: the value to check, an int or a float.

    Returns:
        `value` as a `float`.

    Raises:
        TypeError: `value` is not a number (bools and strings are not).
        ValueError: `value` is below 0, or is NaN or infinite.

    Example:

    >>> check_non_negative_float("memory_tau_min", 0)
    0.0
    >>> check_non_negative_float("memory_tau_min", "1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Argument `memory_tau_min` must be a number >= 0. Received: ...
    """
    if not is_number(value):
        raise TypeError(
            f"Argument `{name}` must be a number >= 0. Received: "
            f"{name}={value!r} of type {type(value).__name__}"
        )
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0. "
            f"Received: {name}={value}"
        )
    return float(value)


def check_number(name, value, minimum=None, maximum=None, what="a number"):
    """`value` as a finite Python float within bounds, or raises.

    Args:
        name: the argument's name, for the message.
        value: the value to check, an int or a float.
        minimum: the smallest value allowed (None: no bound).
        maximum: the largest value allowed (None: no bound).
        what: what the value is, for the message (`"a false-positive
            rate"`).

    Returns:
        `value` as a `float`.

    Raises:
        TypeError: `value` is not a number (bools and strings are not).
        ValueError: `value` is NaN, infinite or out of the bounds.

    Example:

    >>> check_number("rate", 0.25, 0, 1)
    0.25
    >>> check_number("rate", float("nan"), 0, 1, what="a rate")
    Traceback (most recent call last):
    ...
    ValueError: Argument `rate` must be a rate in [0, 1]. Received: rate=nan
    """
    if minimum is not None and maximum is not None:
        expected = f"{what} in [{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        expected = f"{what} >= {minimum:g}"
    elif maximum is not None:
        expected = f"{what} <= {maximum:g}"
    else:
        expected = f"{what}, finite"
    if not is_number(value):
        raise TypeError(
            f"Argument `{name}` must be {expected}. Received: "
            f"{name}={value!r:.80} of type {type(value).__name__}"
        )
    if (
        not math.isfinite(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        raise ValueError(
            f"Argument `{name}` must be {expected}. Received: {name}={value!r}"
        )
    return float(value)


def check_seed(name, value, allow_negative=False):
    """A seed as a Python int (or None), or raises naming `name`.

    Args:
        name: the argument's name, for the message.
        value: None, or an integer seed.
        allow_negative: whether a negative seed is allowed (Keras's
            initializers take one; NumPy's generators do not).

    Returns:
        `value` as an `int`, or None.

    Raises:
        TypeError: `value` is neither None nor an integer (bools are not).
        ValueError: `value` is negative where that is not allowed.

    Example:

    >>> check_seed("seed", np.int32(7))
    7
    >>> check_seed("seed", -1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Argument `seed` must be None or a non-negative integer. ...
    """
    if value is None:
        return None
    kind = "an integer" if allow_negative else "a non-negative integer"
    if not _is_int(value):
        raise TypeError(
            f"Argument `{name}` must be None or {kind}. "
            f"Received: {name}={value!r}"
        )
    if value < 0 and not allow_negative:
        raise ValueError(
            f"Argument `{name}` must be None or a non-negative integer. "
            f"Received: {name}={value}"
        )
    return int(value)


def check_int_choice(name, value, choices):
    """`value` as a Python int among the integers `choices`, or raises.

    Unlike `check_choice`, the type is checked first: `True` and `1.0`
    equal `1` in Python, but are not the integer 1.

    Args:
        name: the argument's name, for the message.
        value: the value to check.
        choices: the integers allowed, such as `(1, 2)`.

    Returns:
        `value` as an `int`.

    Raises:
        TypeError: `value` is not an integer (bools are not).
        ValueError: `value` is not among `choices`.

    Example:

    >>> check_int_choice("version", np.int64(2), (1, 2))
    2
    >>> check_int_choice("version", "1", (1, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Argument `version` must be the integer 1 or 2. Received: ...
    """
    choices = tuple(choices)
    expected = ", ".join(str(c) for c in choices[:-1])
    expected = f"{expected} or {choices[-1]}" if expected else str(choices[0])
    if not _is_int(value):
        raise TypeError(
            f"Argument `{name}` must be the integer {expected}. Received: "
            f"{name}={value!r} of type {type(value).__name__}"
        )
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be the integer {expected}. Received: "
            f"{name}={value!r}"
        )
    return int(value)


def check_auto_or_bool(name, value):
    """`"auto"`, True or False (NumPy bools as bool), or raises.

    Args:
        name: the argument's name, for the message.
        value: the value to check.

    Returns:
        `"auto"` or a Python `bool`.

    Raises:
        TypeError: `value` is neither a string nor a bool (`1 == True` in
            Python, but 1 is not a bool).
        ValueError: `value` is a string other than `"auto"`.

    Example:

    >>> check_auto_or_bool("use_fast_path", np.True_)
    True
    >>> check_auto_or_bool("use_fast_path", "Auto")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Argument `use_fast_path` must be 'auto', True or False. ...
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    message = (
        f"Argument `{name}` must be 'auto', True or False. "
        f"Received: {name}={value!r}"
    )
    if not isinstance(value, str):
        raise TypeError(f"{message} of type {type(value).__name__}")
    if value != "auto":
        raise ValueError(message)
    return value


def check_tau_init_range(init_range, tau_min, tau_max, spacing):
    """The initial range of τ_m as a float pair (or None), or raises.

    Args:
        init_range: `memory_tau_init_range`: None, or a pair `(low, high)`
            of numbers with `tau_min <= low < high <= tau_max`.
        tau_min: `memory_tau_min`, a number >= 0.
        tau_max: `memory_tau_max`, a number > `tau_min`.
        spacing: `memory_tau_spacing`, `"log"` or `"linear"`; log-spaced
            τ_m need `low > 0`.

    Returns:
        `(low, high)` as floats, or None.

    Raises:
        TypeError: `init_range` is not None, a list, tuple or 1-D array
            (a string such as `"15"` would unpack as (1.0, 5.0)), or holds
            something other than numbers.
        ValueError: `spacing` is neither `"log"` nor `"linear"`;
            `init_range` does not hold two values, or they are not within
            the bounds and increasing; log spacing from 0.

    Example:

    >>> check_tau_init_range([1, 150], 0.0, 1000.0, "linear")
    (1.0, 150.0)
    >>> check_tau_init_range((1.0, 5.0), 0.0, 4.0, "linear")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Argument `memory_tau_init_range` must satisfy ...
    """
    check_choice("memory_tau_spacing", spacing, ("log", "linear"))
    if init_range is None:
        if spacing == "log" and is_number(tau_min) and tau_min <= 0:
            raise ValueError(
                "Log-spaced τ_m cannot start at memory_tau_min=0: pass "
                "memory_tau_init_range=(low, high) with low > 0, or "
                "memory_tau_spacing='linear'."
            )
        return None
    message = (
        "Argument `memory_tau_init_range` must be None or a pair "
        f"(low, high) of numbers. Received: memory_tau_init_range="
        f"{init_range!r}"
    )
    if not isinstance(init_range, (list, tuple, np.ndarray)) or not all(
        is_number(v) for v in np.asarray(init_range, dtype=object).ravel()
    ):
        raise TypeError(message)
    if np.ndim(init_range) != 1 or len(init_range) != 2:
        raise ValueError(message)
    low, high = (float(v) for v in init_range)
    if not (tau_min <= low < high <= tau_max):
        raise ValueError(
            "Argument `memory_tau_init_range` must satisfy memory_tau_min "
            f"<= low < high <= memory_tau_max = [{tau_min}, {tau_max}]. "
            f"Received: memory_tau_init_range={init_range!r}"
        )
    if spacing == "log" and low <= 0:
        raise ValueError(
            "Log-spaced τ_m needs memory_tau_init_range with low > 0. "
            f"Received: memory_tau_init_range={init_range!r}"
        )
    return (low, high)


def check_bool(name, value):
    """`value` if it is True or False, else a `TypeError` naming `name`.

    Example:

    >>> check_bool("smoke", False)
    False
    """
    if not isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be True or False. Received: {name}={value!r} of "
            f"type {type(value).__name__}"
        )
    return value


def check_folder(name, value):
    """`value` (a folder, as given) or None; a `TypeError` naming `name`
    for anything but None, a string or a path.

    Example:

    >>> check_folder("data_dir", None) is None
    True
    """
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"`{name}` must be a folder (a string or a path) or None. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    return value
