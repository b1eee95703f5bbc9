"""keras_elm: the Expressive Leaky Memory neuron for Keras 3."""

from keras_elm import callbacks
from keras_elm import convert
from keras_elm import data
from keras_elm import distribute
from keras_elm import layers
from keras_elm import math
from keras_elm import metrics
from keras_elm import models
from keras_elm import pretrained
from keras_elm import routing
from keras_elm.cell import ELMCell
from keras_elm.layer import ELM

__version__ = "0.1.0"

__all__ = [
    "ELM",
    "ELMCell",
    "callbacks",
    "convert",
    "data",
    "distribute",
    "layers",
    "math",
    "metrics",
    "models",
    "pretrained",
    "routing",
]
