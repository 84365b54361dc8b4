"""Machines: the models of the papers, built on Networks and local rules."""

from .sigmoid_belief_net import SigmoidBeliefNet

__all__ = ["SigmoidBeliefNet"]
