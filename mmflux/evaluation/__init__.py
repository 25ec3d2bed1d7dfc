"""Evaluation: test grids and budgets, Token Optimization search."""
from .test_grid import set_test_grid

__all__ = ['set_test_grid']
