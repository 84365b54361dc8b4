"""Machines: the models of the papers, built on Networks and local rules."""
