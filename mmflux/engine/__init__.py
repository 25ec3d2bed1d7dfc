"""Training-loop components: hooks, optimizer constructors."""
from . import hooks, optimizers  # noqa: F401
from .hooks import (BadVideoCountHook, FluxConfigCheckHook, FluxSamplerResumeHook,
                    KeyedRandomHook, RandomStateHook)
from .optimizers import FluxLayerDecayOptimWrapperConstructor

__all__ = [
    'BadVideoCountHook', 'FluxConfigCheckHook', 'FluxLayerDecayOptimWrapperConstructor',
    'FluxSamplerResumeHook', 'KeyedRandomHook', 'RandomStateHook', 'hooks', 'optimizers'
]
