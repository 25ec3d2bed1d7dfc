"""Training-loop components: hooks, optimizer constructors."""
from . import hooks, optimizers, schedulers  # noqa: F401
from .hooks import (BadVideoCountHook, FluxConfigCheckHook, FluxSamplerResumeHook,
                    KeyedRandomHook, RandomStateHook)
from .optimizers import FluxLayerDecayOptimWrapperConstructor
from .runner import FluxRunner
from .schedulers import CosineToEndLR

__all__ = [
    'BadVideoCountHook', 'CosineToEndLR', 'FluxConfigCheckHook', 'FluxLayerDecayOptimWrapperConstructor',
    'FluxRunner', 'FluxSamplerResumeHook', 'KeyedRandomHook', 'RandomStateHook', 'hooks', 'optimizers',
    'schedulers'
]
