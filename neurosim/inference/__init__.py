"""Inference: exact enumeration (the ground truth) and factorial approximations; log Z of an
RBM by AIS is in :mod:`neurosim.machines.ais`."""

from .exact import (MAX_FREE_UNITS, MAX_SCALE, Posterior, all_states, bitstring, energy, log_joint,
                    kl_data_model, log_partition, log_prob, posterior, visible_log_prob)
from .factorial import kl, mean_field, moment_matched

__all__ = ["MAX_FREE_UNITS", "MAX_SCALE", "Posterior", "all_states", "bitstring", "energy", "log_joint",
           "log_partition", "log_prob", "posterior", "kl", "mean_field", "moment_matched",
           "visible_log_prob", "kl_data_model"]
