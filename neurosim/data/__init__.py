"""Training data: built-in data sets (shifter, bars and stripes, 4-2-4 encoder), files, MNIST.

:func:`load_data` turns the ``--data`` argument of ``neurosim train`` into a
:class:`Dataset`; :func:`match_visible` lines its columns up with a net's visible units.
:func:`fetch_mnist` and :func:`load_mnist` fetch, verify, cache and load MNIST
(:func:`load_binary_mnist`: its pixels as seeded bits, or thresholded).
"""

from .files import load_data, match_visible
from .generators import (GENERATORS, LEFT, RIGHT, DataError, Dataset, bars_stripes,
                         empirical_distribution, encoder_424, generate, is_valid_shift,
                         shift_direction, shifter, shifter_entropy_nats)
from .mnist import BINARIZATIONS, MNIST_SHA256, fetch_mnist, load_binary_mnist, load_mnist

__all__ = ["Dataset", "DataError", "GENERATORS", "generate", "load_data", "match_visible",
           "empirical_distribution", "shifter", "shifter_entropy_nats", "shift_direction",
           "is_valid_shift", "bars_stripes", "encoder_424", "LEFT", "RIGHT",
           "fetch_mnist", "load_mnist", "load_binary_mnist", "BINARIZATIONS", "MNIST_SHA256"]
