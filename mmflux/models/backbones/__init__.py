from .base import BaseFluxBackbone
from .fluxvit import ARCH_SETTINGS, FluxViT
from .selective_vit import SelectiveVisionTransformer

__all__ = ['ARCH_SETTINGS', 'BaseFluxBackbone', 'FluxViT', 'SelectiveVisionTransformer']
