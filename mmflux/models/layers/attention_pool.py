"""Attentive pooling: one query (the token mean) attends over all tokens."""
import torch
import torch.nn.functional as F
from torch import nn


class PoolCrossAttention(nn.Module):
    """Cross-attention with bias-free q/k/v projections plus separate learnable biases.

    Parameter names (``q``, ``k``, ``v``, ``q_bias``, ``k_bias``, ``v_bias``,
    ``proj``) follow the released checkpoints.
    """

    def __init__(self, dim: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'pooling dim {dim} must be divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.k_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        B, Nq, C = query.shape
        Nk = key.shape[1]
        d = C // self.num_heads
        q = F.linear(query, self.q.weight, self.q_bias).view(B, Nq, self.num_heads, d).transpose(1, 2)
        k = F.linear(key, self.k.weight, self.k_bias).view(B, Nk, self.num_heads, d).transpose(1, 2)
        v = F.linear(value, self.v.weight, self.v_bias).view(B, Nk, self.num_heads, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, Nq, C))


class AttentionPoolProjector(nn.Module):
    """Pool (B, N, C) tokens into one (B, out_dim) feature.

    The query is the mean of all tokens (cls included); query, keys and values get
    their own LayerNorm. No residual: the output lives in the pooled-feature space.
    """

    def __init__(self, dim: int, num_heads: int = 16, out_dim: int = 768) -> None:
        super().__init__()
        self.norm1_q = nn.LayerNorm(dim)
        self.norm1_k = nn.LayerNorm(dim)
        self.norm1_v = nn.LayerNorm(dim)
        self.cross_attn = PoolCrossAttention(dim, num_heads, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query = x.mean(dim=1, keepdim=True)
        out = self.cross_attn(self.norm1_q(query), self.norm1_k(x), self.norm1_v(x))
        return out.squeeze(1)
