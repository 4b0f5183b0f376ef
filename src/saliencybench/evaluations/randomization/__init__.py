"""Parameter- and data-randomization sanity checks (Adebayo et al. 2018) and the extended
independent parameter randomization test of Sriram & Conati.

``spec`` plans it (torch-free), ``compute`` randomizes layers and compares maps, ``summary``
computes S^I and its interval (numpy and xarray), ``report`` writes its table and figures.
"""
