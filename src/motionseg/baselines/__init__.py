"""Baseline models of the paper's Table 1: Conv-PGP, VLN-ResNet and VLN-LDC."""
from motionseg.baselines.conv_pgp import ConvPGP
from motionseg.baselines.vln import VLNLDC, VLNResNet

__all__ = ["ConvPGP", "VLNResNet", "VLNLDC"]
