"""Tensor math shared by units and the bench floor probes (FP8 scaling); depends on torch only."""
