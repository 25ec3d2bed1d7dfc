"""Training-loop components: hooks, optimizer constructors."""
from . import hooks, optimizers  # noqa: F401
from .hooks import (BadVideoCountHook, FluxConfigCheckHook, FluxSamplerResumeHook,
                    RandomStateHook)
from .optimizers import FluxLayerDecayOptimWrapperConstructor
from .runner import FluxRunner

__all__ = [
    'BadVideoCountHook', 'FluxConfigCheckHook', 'FluxLayerDecayOptimWrapperConstructor',
    'FluxRunner', 'FluxSamplerResumeHook', 'RandomStateHook', 'hooks', 'optimizers'
]
