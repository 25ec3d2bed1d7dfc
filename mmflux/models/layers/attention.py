"""Multi-head self-attention with joint q/k RMSNorm and the local positional term."""
import torch
import torch.nn.functional as F
from torch import nn

from .channel_affine import DepthwiseAffine
from .rms_norm import RMSNorm


class FluxAttention(nn.Module):
    """Self-attention of FluxViT blocks.

    q and k are RMS-normalised over the full embedding (all heads jointly) before
    the head split; the local positional embedding (LPE) adds a per-channel affine
    map of V to the attention output before the output projection. The attention
    itself runs through ``F.scaled_dot_product_attention`` (flash / memory-efficient
    kernels on GPU, the fused CPU kernel otherwise).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False,
                 qk_norm: bool = True, use_lpe: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'embed_dims {dim} must be divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = RMSNorm(dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(dim) if qk_norm else nn.Identity()
        self.lpe = DepthwiseAffine(dim) if use_lpe else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, C).unbind(2)
        q, k = self.q_norm(q), self.k_norm(k)
        heads = (B, N, self.num_heads, self.head_dim)
        q, k, vh = (t.reshape(heads).transpose(1, 2) for t in (q, k, v))  # (B, H, N, d)
        # q, k leave RMSNorm in its dtype; under autocast v is already bf16: one dtype for SDPA
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), vh.to(q.dtype))
        out = out.transpose(1, 2).reshape(B, N, C)
        if self.lpe is not None:
            out = out + self.lpe(v).to(out.dtype)
        return self.proj(out)
