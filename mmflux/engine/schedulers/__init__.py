"""Parameter schedulers (registered in MMAction2's ``PARAM_SCHEDULERS``)."""
from .cosine_to_end import CosineToEndLR

__all__ = ['CosineToEndLR']
