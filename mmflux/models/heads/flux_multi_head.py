"""Multi-budget head: one attention-pooling projector and classifier per budget."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from mmaction.evaluation import top_k_accuracy
from mmaction.models.heads.base import BaseHead
from mmaction.registry import MODELS
from mmaction.utils import SampleList
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
        loss_cls / label_smooth_eps / average_clips / topk: as in MMAction2's
            ``BaseHead``: :meth:`loss_by_feat` smooths hard and (Mixup-)soft labels
            once by ``label_smooth_eps`` and applies ``loss_cls`` (MMAction2's
            ``CrossEntropyLoss`` takes soft labels) at every trained budget.
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
        if not 0.0 <= label_smooth_eps < 1.0:
            raise ValueError(f'cls_head.label_smooth_eps={label_smooth_eps!r}: must be in [0, 1); '
                             'fix: e.g. 0.1 (the released recipe) or 0 for none.')
        super().__init__(num_classes, in_channels, loss_cls=loss_cls,
                         label_smooth_eps=label_smooth_eps, average_clips=average_clips,
                         init_cfg=init_cfg, **kwargs)
        budgets = list(head_budgets) if isinstance(head_budgets, (list, tuple)) else []
        if not budgets or any(isinstance(b, bool) or not isinstance(b, int) or b < 1
                              for b in budgets):
            raise ValueError(f'model.cls_head.head_budgets={head_budgets!r}: must be one positive '
                             'token budget per head; fix: e.g. (3072, 2048, 1024).')
        self.head_budgets: List[int] = budgets
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

    # ------------------------------------------------------------ loss
    def labels(self, data_samples: SampleList, rows: int) -> torch.Tensor:
        """Hard (rows, ) or soft (rows, num_classes) labels, repeated over the views.

        ``rows`` = samples x views (repeated augmentation: views share the label).
        """
        labels = torch.stack([torch.as_tensor(s.gt_label).reshape(-1) for s in data_samples])
        if labels.shape[1] == self.num_classes and labels.is_floating_point():
            soft = True
        elif labels.shape[1] == 1:
            soft, labels = False, labels[:, 0].long()
            bad = labels[(labels < 0) | (labels >= self.num_classes)]
            if bad.numel():
                raise ValueError(f'label {int(bad[0])} is out of range for cls_head.num_classes='
                                 f'{self.num_classes}; fix: set num_classes to the number of '
                                 'classes of the annotation files.')
        else:
            raise ValueError(f'gt_label of shape {tuple(labels.shape[1:])} is neither a class index '
                             f'nor a soft label of cls_head.num_classes={self.num_classes}.')
        if rows % len(data_samples):
            raise ValueError(f'{rows} score rows do not split into views of {len(data_samples)} '
                             'samples.')
        labels = labels.repeat_interleave(rows // len(data_samples), dim=0)
        return labels.float() if soft else labels

    def loss_by_feat(self, cls_scores: Union[torch.Tensor, Sequence[torch.Tensor]],
                     data_samples: SampleList,
                     heads: Optional[Sequence[int]] = None) -> Dict[str, torch.Tensor]:
        """Classification loss (and top-k accuracy on hard labels) of each trained budget.

        ``cls_scores``: one (N * V, num_classes) tensor, or one per entry of
        ``heads``. A single tensor gives MMAction2's keys (``loss_cls``,
        ``top1_acc``, ...); a list gives ``loss_cls_<head>`` and
        ``top<k>_acc_<head>``, and the first (largest) budget's accuracy also as
        ``top<k>_acc``, the key MMAction2's recognizers log.
        """
        if isinstance(cls_scores, torch.Tensor):
            return self._loss_one(cls_scores, self.labels(data_samples, len(cls_scores)), '')
        heads = list(range(len(cls_scores))) if heads is None else list(heads)
        if len(heads) != len(cls_scores):
            raise ValueError(f'{len(cls_scores)} score tensors for {len(heads)} heads {heads}.')
        labels = self.labels(data_samples, len(cls_scores[0]))
        losses: Dict[str, torch.Tensor] = {}
        for i, (scores, head) in enumerate(zip(cls_scores, heads)):
            part = self._loss_one(scores, labels, f'_{head}')
            if i == 0:
                losses.update({k[:-len(f'_{head}')]: v for k, v in part.items() if '_acc' in k})
            losses.update(part)
        return losses

    def _loss_one(self, scores: torch.Tensor, labels: torch.Tensor,
                  suffix: str) -> Dict[str, torch.Tensor]:
        losses = {}
        scores = scores.float()
        if labels.dim() == 1:
            accs = top_k_accuracy(scores.detach().cpu().numpy(), labels.cpu().numpy(), self.topk)
            for k, acc in zip(self.topk, accs):
                losses[f'top{k}_acc{suffix}'] = torch.tensor(acc, device=scores.device)
        labels = labels.to(scores.device)
        if self.label_smooth_eps != 0:
            if labels.dim() == 1:
                labels = F.one_hot(labels, self.num_classes).float()
            labels = (1 - self.label_smooth_eps) * labels + self.label_smooth_eps / self.num_classes
        loss = self.loss_cls(scores, labels)
        if isinstance(loss, dict):
            losses.update({f'{k}{suffix}': v for k, v in loss.items()})
        else:
            losses[f'loss_cls{suffix}'] = loss
        return losses

    def loss_align(self, teacher: torch.Tensor, pooled: torch.Tensor, head: int) -> torch.Tensor:
        """Smooth-L1 of head ``head``'s aligned feature to the detached largest-budget feature."""
        target = F.normalize(teacher.detach().float(), dim=-1)
        student = F.normalize(self.align(pooled, head).float(), dim=-1)
        return F.smooth_l1_loss(student, target, beta=1.0)
