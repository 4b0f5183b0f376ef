"""Infidelity and max-sensitivity (Yeh et al. 2019) of every method and its SmoothGrad
variant.

``spec`` plans it (torch-free), ``compute`` measures one method on one model, ``summary``
takes means and intervals (numpy and xarray), ``report`` writes its table and figure.
"""
