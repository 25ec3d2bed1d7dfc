from .autocast_optim_wrapper import AutocastOptimWrapper
from .layer_decay_constructor import FluxLayerDecayOptimWrapperConstructor, layer_level

__all__ = ['AutocastOptimWrapper', 'FluxLayerDecayOptimWrapperConstructor', 'layer_level']
