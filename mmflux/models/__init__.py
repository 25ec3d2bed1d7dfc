"""FluxViT, token selectors, the multi-budget head and the Flux recognizer."""
from . import backbones, heads, layers, recognizers, selectors  # noqa: F401
from .backbones import FluxViT
from .heads import FluxMultiHead
from .recognizers import FluxRecognizer
from .selectors import GroupDynamicSelector, RandomSelector

__all__ = ['FluxViT', 'FluxMultiHead', 'FluxRecognizer', 'GroupDynamicSelector', 'RandomSelector']
