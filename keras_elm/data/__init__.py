"""Datasets of the paper's tasks: generators and loaders of the real files."""

from keras_elm.data import cifar10
from keras_elm.data import pathfinder

__all__ = ["cifar10", "pathfinder"]
