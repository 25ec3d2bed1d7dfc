"""Training-loop components: hooks, optimizer constructors."""
from . import hooks, optimizers, schedulers  # noqa: F401
from .hooks import (BadVideoCountHook, FluxConfigCheckHook, FluxSamplerResumeHook,
                    KeyedRandomHook, RandomStateHook)
from .optimizers import FluxLayerDecayOptimWrapperConstructor
from .schedulers import CosineToEndLR

__all__ = [
    'BadVideoCountHook', 'CosineToEndLR', 'FluxConfigCheckHook', 'FluxLayerDecayOptimWrapperConstructor',
    'FluxSamplerResumeHook', 'KeyedRandomHook', 'RandomStateHook', 'hooks', 'optimizers',
    'schedulers'
]
