"""Perturbation curves and fidelity A (Brocki & Chung 2023): pixels perturbed
most-important-first (MIF) and least-important-first (LIF), the area between the curves.

``spec`` plans it (torch-free), ``compute`` draws the curves, ``summary`` computes fidelity
A per recipe and estimator (numpy and xarray), ``report`` writes its table and figures.
"""
