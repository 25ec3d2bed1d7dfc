"""Evaluation: the test grid and the Token Optimization switch, plans, the search, robust accuracy."""
from .cascade import BudgetCascade
from .cascade_metric import CascadeUsageMetric
from .robust_acc_metric import RobustAccMetric
from .test_grid import (ViewGrid, apply_token_optimization, cfg_options, read_test_grid,
                        set_test_grid, view_grids)
from .to_config_mixin import TokenOptimizationConfigMixin
from .to_plan import TOPlan

__all__ = [
    'BudgetCascade', 'CascadeUsageMetric', 'RobustAccMetric', 'TOPlan',
    'TokenOptimizationConfigMixin', 'ViewGrid',
    'apply_token_optimization', 'cfg_options', 'read_test_grid', 'set_test_grid', 'view_grids'
]
