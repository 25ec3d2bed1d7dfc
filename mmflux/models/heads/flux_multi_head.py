"""Multi-budget head: one attention-pooling projector and classifier per budget."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from mmaction.models.heads.base import BaseHead
from mmaction.registry import MODELS
from ..layers import AttentionPoolProjector


class AlignDecoder(nn.Module):
    """Linear -> LayerNorm -> L2 normalisation, used only by the alignment loss."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.norm(self.head(x)), dim=-1)


@MODELS.register_module()
class FluxMultiHead(BaseHead):
    """Three attention-pooling projectors, a shared ``fc_norm`` and three classifiers.

    Head ``k`` was trained for ``head_budgets[k]`` tokens (released: 0 <-> 3072,
    1 <-> 2048, 2 <-> 1024). Alignment decoder ``k - 1`` maps head ``k``'s pooled
    feature into the space of head 0's for the Flux-Multi alignment loss.
    Parameter names follow the released checkpoints (``clip_projector``,
    ``fc_norm``, ``head``, ``final_clip_decoder_for_projs``).

    Args:
        num_classes: number of classes.
        in_channels: backbone width C.
        head_budgets: the token count each head was trained for, largest first.
        pool_num_heads: attention heads of each pooling projector.
        pool_dims: pooled feature size (768 in the released models).
        with_align: build the alignment decoders (training; harmless at test).
        label_smooth_eps / average_clips / topk: as in MMAction2's ``BaseHead``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 head_budgets: Sequence[int] = (3072, 2048, 1024),
                 pool_num_heads: int = 16,
                 pool_dims: int = 768,
                 with_align: bool = True,
                 dropout_ratio: float = 0.0,
                 loss_cls: Dict = dict(type='CrossEntropyLoss'),
                 label_smooth_eps: float = 0.0,
                 average_clips: Optional[str] = 'prob',
                 init_cfg=None,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, loss_cls=loss_cls,
                         label_smooth_eps=label_smooth_eps, average_clips=average_clips,
                         init_cfg=init_cfg, **kwargs)
        self.head_budgets: List[int] = [int(b) for b in head_budgets]
        if not self.head_budgets or any(b < 1 for b in self.head_budgets):
            raise ValueError(f'cls_head.head_budgets must be positive ints, got {head_budgets}.')
        num = len(self.head_budgets)
        self.pool_dims = pool_dims
        self.clip_projector = nn.ModuleList(
            [AttentionPoolProjector(in_channels, pool_num_heads, pool_dims) for _ in range(num)])
        self.fc_norm = nn.LayerNorm(pool_dims)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.head = nn.ModuleList([nn.Linear(pool_dims, num_classes) for _ in range(num)])
        self.final_clip_decoder_for_projs = nn.ModuleList(
            [AlignDecoder(pool_dims) for _ in range(num - 1)]) if with_align else None

    @property
    def num_heads(self) -> int:
        return len(self.head_budgets)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def check_head(self, head: int) -> int:
        if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < self.num_heads:
            raise ValueError(f'head index {head!r} is out of range: this head has '
                             f'{self.num_heads} heads for budgets {self.head_budgets}.')
        return head

    def nearest_head(self, num_tokens: int) -> int:
        """The head trained for the budget closest to ``num_tokens`` (larger on ties)."""
        gaps = [abs(b - num_tokens) for b in self.head_budgets]
        return gaps.index(min(gaps))

    def pool(self, tokens: torch.Tensor, head: int = 0) -> torch.Tensor:
        """(B, N, C) tokens -> (B, pool_dims) pooled feature of projector ``head``."""
        return self.clip_projector[self.check_head(head)](tokens)

    def classify(self, pooled: torch.Tensor, head: int = 0) -> torch.Tensor:
        return self.head[self.check_head(head)](self.dropout(self.fc_norm(pooled)))

    def align(self, pooled: torch.Tensor, head: int) -> torch.Tensor:
        """L2-normalised projection of head ``head``'s (>= 1) feature onto head 0's space."""
        if self.final_clip_decoder_for_projs is None:
            raise ValueError('cls_head.with_align=False: no alignment decoders to use.')
        if not 1 <= head < self.num_heads:
            raise ValueError(f'alignment is defined for heads 1..{self.num_heads - 1}, got {head}.')
        return self.final_clip_decoder_for_projs[head - 1](pooled)

    def forward(self, x: torch.Tensor, head: int = 0, **kwargs) -> torch.Tensor:
        """Logits (B, num_classes) of head ``head`` for backbone tokens (B, N, C)."""
        return self.classify(self.pool(x, head), head)
