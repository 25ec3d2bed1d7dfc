"""FluxViT, token selectors, the multi-budget head and the Flux recognizer."""
from . import backbones, geometry, heads, layers, recognizers, selectors  # noqa: F401
from .backbones import BaseFluxBackbone, FluxViT
from .geometry import BackboneOutput, TokenGeometry, num_tokens, token_geometry, token_grid
from .heads import FluxMultiHead
from .recognizers import FluxRecognizer
from .selectors import GroupDynamicSelector, RandomSelector

__all__ = ['BackboneOutput', 'BaseFluxBackbone', 'FluxViT', 'FluxMultiHead', 'FluxRecognizer',
           'GroupDynamicSelector', 'RandomSelector', 'TokenGeometry', 'num_tokens', 'token_geometry',
           'token_grid']
