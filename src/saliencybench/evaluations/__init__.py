"""One module per evaluation: ROAR/KAR, perturbation curves, robustness, randomization, hermitry."""
