"""Datasets, Flux sampling and transforms (registered into MMAction2)."""
