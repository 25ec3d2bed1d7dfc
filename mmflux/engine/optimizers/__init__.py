from .autocast_optim_wrapper import AutocastOptimWrapper
from .layer_decay_constructor import FluxLayerDecayOptimWrapperConstructor, layer_levels

__all__ = ['AutocastOptimWrapper', 'FluxLayerDecayOptimWrapperConstructor', 'layer_levels']
