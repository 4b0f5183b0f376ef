"""The hermitry ratio (the hermitry paper): the share of the inputs a method or an
evaluation sends to the model that lie out of distribution, by class-conditional Mahalanobis
distances of penultimate encodings.

``spec`` plans it (torch-free), ``compute`` fits the reference and captures and measures the
inputs, ``summary`` computes H per class and source (numpy and xarray), ``report`` writes its
tables and figures.
"""
