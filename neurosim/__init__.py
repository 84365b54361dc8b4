"""neurosim: networks of stochastic binary neurons, run unit by unit or as matrices."""

from .errors import (EvidenceError, InferenceError, LocalityError, ModelFileError, NeurosimError,
                     ValidationError)
from .inference import energy, log_partition, log_prob
from .machines import RBM
from .modelfile import dumps, load, loads, save
from .network import Edge, Network, Unit
from .sampling import posterior, sample

load_model = load
save_model = save

__all__ = ["Network", "Unit", "Edge", "load", "loads", "save", "dumps", "load_model",
           "save_model", "posterior", "sample", "energy", "log_partition", "log_prob", "NeurosimError",
           "ValidationError", "ModelFileError", "EvidenceError", "InferenceError", "LocalityError",
           "RBM"]
__version__ = "0.1.0"
