"""Machines: the models of the papers, built on Networks and local rules."""

from .boltzmann import BoltzmannMachine
from .dbm import DeepBoltzmannMachine
from .dbn import DeepBeliefNet
from .helmholtz import HelmholtzMachine
from .rbm import RBM
from .sigmoid_belief_net import SigmoidBeliefNet

__all__ = ["BoltzmannMachine", "DeepBeliefNet", "DeepBoltzmannMachine", "HelmholtzMachine", "RBM", "SigmoidBeliefNet"]
