"""`keras_elm.checks`: one exception policy for every argument check.

A bad type raises `TypeError`, a bad value of the right type `ValueError`,
and the message names the argument. Pure Python and NumPy: the checks do
not depend on the backend, so they run in one backend's process only.
"""

import ast
import inspect

import keras
import numpy as np
import pytest

from keras_elm import callbacks
from keras_elm import checks
from keras_elm import routing

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="backend-independent: runs in the torch process only",
)

NAN, INF = float("nan"), float("inf")

# Values that are not numbers of any kind, for every numeric check.
NOT_NUMBERS = [None, "3", b"3", [3], (3,), {"a": 3}, True, False, np.True_]
NOT_INTEGERS = NOT_NUMBERS + [3.0, 2.5, np.float32(3.0), NAN, INF]


def call(check, value):
    """Runs one check on `value` with the argument name `arg`."""
    return check("arg", value)


INT_CHECKS = {
    "check_int": lambda name, value: checks.check_int(name, value, 1),
    "check_positive_int": checks.check_positive_int,
    "check_seed": checks.check_seed,
    "check_int_choice": lambda name, value: checks.check_int_choice(
        name, value, (1, 2)
    ),
}
FLOAT_CHECKS = {
    "check_positive_float": checks.check_positive_float,
    "check_non_negative_float": checks.check_non_negative_float,
    "check_number": lambda name, value: checks.check_number(name, value, 0, 10),
}


@pytest.mark.parametrize("name", INT_CHECKS)
@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
def test_integer_checks_raise_type_error_for_non_integers(name, value):
    if value is None and name == "check_seed":
        return  # None means "no seed"
    with pytest.raises(TypeError, match="`arg`") as info:
        call(INT_CHECKS[name], value)
    assert not isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", FLOAT_CHECKS)
@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
def test_number_checks_raise_type_error_for_non_numbers(name, value):
    with pytest.raises(TypeError, match="`arg`"):
        call(FLOAT_CHECKS[name], value)


@pytest.mark.parametrize("name", FLOAT_CHECKS)
@pytest.mark.parametrize(
    "value", [NAN, INF, -INF, np.float32("nan"), -1, -0.5], ids=repr
)
def test_number_checks_raise_value_error_for_bad_values(name, value):
    with pytest.raises(ValueError, match="`arg`"):
        call(FLOAT_CHECKS[name], value)


@pytest.mark.parametrize(
    "name, value",
    [
        ("check_int", 0),
        ("check_int", np.int64(-3)),
        ("check_positive_int", 0),
        ("check_positive_int", -1),
        ("check_seed", -1),
        ("check_int_choice", 3),
        ("check_int_choice", np.int32(0)),
    ],
)
def test_integer_checks_raise_value_error_for_bad_values(name, value):
    with pytest.raises(ValueError, match="`arg`"):
        call(INT_CHECKS[name], value)


@pytest.mark.parametrize("name", INT_CHECKS)
@pytest.mark.parametrize(
    "value", [1, np.int8(1), np.int64(2), np.uint16(1)], ids=repr
)
def test_integer_checks_return_python_ints(name, value):
    result = call(INT_CHECKS[name], value)
    assert result == value and type(result) is int


@pytest.mark.parametrize("name", FLOAT_CHECKS)
@pytest.mark.parametrize("value", [1, 2.5, np.float32(3), np.int64(4)])
def test_number_checks_return_python_floats(name, value):
    result = call(FLOAT_CHECKS[name], value)
    assert result == value and type(result) is float


def test_none_only_where_allowed():
    assert checks.check_positive_int("arg", None, allow_none=True) is None
    assert checks.check_seed("arg", None) is None
    with pytest.raises(TypeError, match="`arg`"):
        checks.check_positive_int("arg", None)


def test_zero_is_a_non_negative_float_but_not_a_positive_one():
    assert checks.check_non_negative_float("arg", 0) == 0.0
    with pytest.raises(ValueError, match="`arg` must be a finite number > 0"):
        checks.check_positive_float("arg", 0)


def test_int_bounds():
    assert checks.check_int("arg", 256, 2, maximum=256) == 256
    with pytest.raises(ValueError, match="`arg` must be at most 256"):
        checks.check_int("arg", 257, 2, maximum=256)


def test_negative_seed_where_allowed():
    assert checks.check_seed("arg", -3, allow_negative=True) == -3


@pytest.mark.parametrize(
    "minimum, maximum, value", [(0, 1, 1.5), (0, None, -1), (None, 1, 2)]
)
def test_number_bounds(minimum, maximum, value):
    with pytest.raises(ValueError, match="`arg`"):
        checks.check_number("arg", value, minimum, maximum)


def test_number_without_bounds_is_finite():
    assert checks.check_number("arg", -5) == -5.0
    with pytest.raises(ValueError, match="`arg`"):
        checks.check_number("arg", INF)


def test_choice_is_a_value_check_whatever_the_type():
    checks.check_choice("arg", "a", ("a", "b"))
    for value in ("c", None, 1, ["a"]):
        with pytest.raises(ValueError, match="`arg` must be one of"):
            checks.check_choice("arg", value, ("a", "b"))


@pytest.mark.parametrize(
    "value, expected",
    [("auto", "auto"), (True, True), (False, False), (np.False_, False)],
)
def test_auto_or_bool_accepts(value, expected):
    result = checks.check_auto_or_bool("arg", value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "value, error",
    [
        (1, TypeError),
        (0, TypeError),
        (None, TypeError),
        (1.0, TypeError),
        ("Auto", ValueError),
        ("true", ValueError),
    ],
)
def test_auto_or_bool_rejects(value, error):
    with pytest.raises(error, match="`arg`"):
        checks.check_auto_or_bool("arg", value)


def test_is_number():
    assert all(checks.is_number(v) for v in (0, 1.5, np.int8(3), NAN, INF))
    assert not any(
        checks.is_number(v) for v in (True, np.True_, "1", None, [1], 1j)
    )


@pytest.mark.parametrize(
    "init_range, error",
    [
        ("15", TypeError),
        ((1.0, "5"), TypeError),
        ((True, 5.0), TypeError),
        ({1.0, 5.0}, TypeError),
        (5.0, TypeError),
        ((1.0,), ValueError),
        ((1.0, 5.0, 9.0), ValueError),
        (np.array([[1.0, 5.0]]), ValueError),
        ((NAN, 5.0), ValueError),
        ((5.0, 1.0), ValueError),
    ],
)
def test_tau_init_range(init_range, error):
    with pytest.raises(error, match="memory_tau_init_range"):
        checks.check_tau_init_range(init_range, 0.0, 100.0, "linear")


def test_tau_init_range_returns_floats():
    low_high = checks.check_tau_init_range(
        (np.int64(1), np.float32(5)), 0.0, 100.0, "log"
    )
    assert low_high == (1.0, 5.0)
    assert all(type(v) is float for v in low_high)


@pytest.mark.parametrize(
    "value, error",
    [
        (3, TypeError),
        ([0.5, 1.0], TypeError),
        ("nonsense", ValueError),
        ([[0, 1]], ValueError),
        ([0, 1, 2], ValueError),
    ],
)
def test_routing_argument(value, error):
    with pytest.raises(error, match="routing"):
        routing.check_routing(value, 2, 1)


def test_routing_indices_become_python_ints():
    indices = routing.check_routing(np.array([1, 0], "int64"), 2, 1)
    assert indices == [1, 0] and all(type(i) is int for i in indices)


# The callbacks' arguments follow the same policy.


@pytest.mark.parametrize(
    "make, value, error",
    [
        (callbacks.TimeLimit, "5", TypeError),
        (callbacks.TimeLimit, 0, ValueError),
        (callbacks.TimeLimit, NAN, ValueError),
        (callbacks.StepTimer, 2.0, TypeError),
        (callbacks.StepTimer, 0, ValueError),
        (lambda v: callbacks.Backup("unused", keep=v), 1.5, TypeError),
        (lambda v: callbacks.Backup("unused", keep=v), 0, ValueError),
        (lambda v: callbacks.BestModel("b.keras", mode=v), "top", ValueError),
    ],
)
def test_callback_arguments(make, value, error):
    with pytest.raises(error):
        make(value)


def test_checks_module_imports_nothing_from_keras_elm():
    tree = ast.parse(inspect.getsource(checks))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ] + [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    ]
    assert not [name for name in imported if "keras_elm" in (name or "")]


def test_data_checks_still_exports_the_checks():
    from keras_elm.data import checks as data_checks

    assert data_checks.check_int is checks.check_int
    assert data_checks.check_choice is checks.check_choice


def test_messages_show_what_was_received():
    with pytest.raises(TypeError) as info:
        checks.check_positive_float("lambda_value", "5")
    assert "lambda_value='5'" in str(info.value)
    assert "of type str" in str(info.value)
