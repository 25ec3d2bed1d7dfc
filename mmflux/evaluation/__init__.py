"""Evaluation: test grids and budgets, Token Optimization search, robust accuracy."""
from .robust_acc_metric import RobustAccMetric
from .test_grid import set_test_grid

__all__ = ['RobustAccMetric', 'set_test_grid']
