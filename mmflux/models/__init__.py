"""FluxViT, token selectors, the multi-budget head and the Flux recognizer."""
from . import backbone_output, backbones, heads, layers, recognizers, selectors  # noqa: F401
from .backbone_output import BackboneOutput
from .backbones import BaseFluxBackbone, FluxViT
from .heads import FluxMultiHead
from .recognizers import FluxRecognizer
from .selectors import GroupDynamicSelector, RandomSelector

__all__ = ['BackboneOutput', 'BaseFluxBackbone', 'FluxViT', 'FluxMultiHead', 'FluxRecognizer',
           'GroupDynamicSelector', 'RandomSelector']
