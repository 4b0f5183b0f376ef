"""ROAR and KAR (Hooker et al. 2019): remove the pixels a method ranks highest (or lowest)
from train and test images, retrain from scratch, and compare accuracies.

``spec`` plans it (torch-free), ``compute`` masks and retrains, ``summary`` gathers the
results (numpy and xarray), ``report`` writes its table and figure.
"""
