"""The authors' golden outputs and gradients, on this backend."""

import pytest

import keras_elm
from keras_elm import convert
from tests.helpers import GOLDEN_CASES
from tests.helpers import assert_close
from tests.helpers import load_golden
from tests.helpers import to_numpy
from tests.helpers import value_and_grads


def _reference_model(name, **layer_kwargs):
    meta, arrays, state = load_golden(name)
    model = convert.from_reference(
        meta["config"], state, version=meta["elm_version"], **layer_kwargs
    )
    return meta, arrays, model


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_trainable_weights_are_the_reference_parameters(name):
    meta, _, model = _reference_model(name)
    layer = model.layers[-1]
    names = {
        id(variable): ref_name
        for ref_name, (variable, _) in convert.reference_variables(
            layer
        ).items()
    }
    trainable = [names[id(v)] for v in model.trainable_weights]
    assert sorted(trainable) == sorted(meta["trainable"])


@pytest.mark.parametrize(
    "use_fast_path", [False, True], ids=["generic", "fast"]
)
@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_outputs_and_gradients_match_reference(name, use_fast_path):
    meta, arrays, model = _reference_model(name, use_fast_path=use_fast_path)
    layer = model.layers[-1]
    y, weight_grads, grad_x = value_and_grads(model, arrays["x"], arrays["r"])
    output_rtol = 1e-4 if name == "pretrained_neuronio_dm15" else 1e-5
    assert_close(y, arrays["y"], output_rtol, "y")
    assert_close(grad_x, arrays["grad_x"], 1e-4, "grad_x")
    variables = convert.reference_variables(layer)
    by_id = {id(v): g for v, g in zip(model.trainable_weights, weight_grads)}
    for ref_name in meta["trainable"]:
        variable, transpose = variables[ref_name]
        grad = by_id[id(variable)]
        assert_close(
            grad.T if transpose is True else grad,
            arrays[f"grad/{ref_name}"],
            1e-4,
            ref_name,
        )


def test_neuronio_evaluation_output_matches_reference():
    _, arrays, model = _reference_model("pretrained_neuronio_dm15")
    y_eval = keras_elm.pretrained.neuronio_evaluation_output(model(arrays["x"]))
    assert_close(to_numpy(y_eval), arrays["y_eval"], 1e-4, "y_eval")


def test_reference_tau_s_must_be_shared_within_a_branch():
    meta, _, state = load_golden("v1_branch")
    tau = state["tau_s"].copy()
    tau[1] = 7.0
    with pytest.raises(ValueError, match="tau_s"):
        convert.from_reference(meta["config"], {**state, "tau_s": tau})
