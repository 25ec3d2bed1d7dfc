"""Evaluation: the test grid, the Token Optimization switch (plans, choice rule, selector
swap) and search, robust accuracy."""
from .grid_config import ViewGrid, read_test_grid, set_test_grid, view_grids
from .robust_acc_metric import RobustAccMetric
from .to_switch import (TOPlan, apply_to_model, apply_token_optimization, cfg_options,
                        resolved_config, set_switch, swap_selector)

__all__ = [
    'RobustAccMetric', 'TOPlan', 'ViewGrid', 'apply_to_model', 'apply_token_optimization',
    'cfg_options', 'read_test_grid', 'resolved_config', 'set_switch', 'set_test_grid',
    'swap_selector', 'view_grids'
]
