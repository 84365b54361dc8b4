"""Machines: the models of the papers, built on Networks and local rules."""

from .boltzmann import BoltzmannMachine
from .helmholtz import HelmholtzMachine
from .sigmoid_belief_net import SigmoidBeliefNet

__all__ = ["BoltzmannMachine", "HelmholtzMachine", "SigmoidBeliefNet"]
