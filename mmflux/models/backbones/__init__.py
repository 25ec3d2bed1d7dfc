from .fluxvit import ARCH_SETTINGS, FluxViT

__all__ = ['ARCH_SETTINGS', 'FluxViT']
