"""Datasets of the paper's tasks: generators and loaders of the real files."""

from keras_elm.data import aan
from keras_elm.data import cifar10
from keras_elm.data import imdb
from keras_elm.data import listops
from keras_elm.data import neuronio
from keras_elm.data import pathfinder
from keras_elm.data import shd

__all__ = ["aan", "cifar10", "imdb", "listops", "neuronio", "pathfinder", "shd"]
