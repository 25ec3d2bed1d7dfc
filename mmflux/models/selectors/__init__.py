"""Token selectors: (patch embeddings, budget) -> kept token indices."""
from .base import BaseTokenSelector, check_budget
from .group_dynamic import GroupDynamicSelector
from .random_selector import RandomSelector

__all__ = ['BaseTokenSelector', 'GroupDynamicSelector', 'RandomSelector', 'check_budget']
