import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


def pytest_report_header(config):
    return f"keras backend: {BACKEND}"


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
