"""Training-loop components: hooks, optimizer constructors."""
from . import hooks, optimizers  # noqa: F401
from .hooks import FluxSamplerResumeHook
from .optimizers import FluxLayerDecayOptimWrapperConstructor

__all__ = ['FluxLayerDecayOptimWrapperConstructor', 'FluxSamplerResumeHook', 'hooks', 'optimizers']
