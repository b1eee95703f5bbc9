"""Argument checks: one message style, ValueError for a bad value, TypeError
for a bad type."""

import numpy as np


def check_int(name, value, minimum):
    """`value` as a Python int, or raises naming `name`.

    Raises:
        TypeError: `value` is not an integer (bools are not).
        ValueError: `value` is below `minimum`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"`{name}` must be an integer. Received: {name}={value!r} of "
            f"type {type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be at least {minimum}. Received: {name}={value}"
        )
    return int(value)


def check_choice(name, value, choices):
    """Raises a `ValueError` naming `name` unless `value` is in `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}. Received: "
            f"{name}={value!r}"
        )
