"""Moved to `keras_elm.checks`; imported from here, the names still work."""

from keras_elm.checks import check_choice  # noqa: F401
from keras_elm.checks import check_int  # noqa: F401
