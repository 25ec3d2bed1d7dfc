"""Building blocks of FluxViT."""
from .attention import FluxAttention
from .attention_pool import AttentionPoolProjector
from .block import FluxBlock
from .channel_affine import DepthwiseAffine
from .patch_embed import DualNormPatchEmbed
from .pos_embed import resize_pos_table, sincos_3d
from .rms_norm import RMSNorm

__all__ = [
    'AttentionPoolProjector', 'DepthwiseAffine', 'DualNormPatchEmbed', 'FluxAttention',
    'FluxBlock', 'RMSNorm', 'resize_pos_table', 'sincos_3d'
]
