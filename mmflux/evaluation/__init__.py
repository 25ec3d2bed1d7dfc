"""Evaluation: the test grid and the Token Optimization switch, plans, the search, robust accuracy."""
from .robust_acc_metric import RobustAccMetric
from .test_grid import (ViewGrid, apply_token_optimization, cfg_options, read_test_grid,
                        set_test_grid, view_grids)
from .to_config_mixin import apply_on_handover
from .to_plan import TOPlan

__all__ = [
    'apply_on_handover',
    'RobustAccMetric', 'TOPlan', 'ViewGrid',
    'apply_token_optimization', 'cfg_options', 'read_test_grid', 'set_test_grid', 'view_grids'
]
