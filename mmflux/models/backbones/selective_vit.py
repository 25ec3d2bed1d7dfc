"""MMAction2's own VisionTransformer, driven at any grid and token budget."""
from typing import Dict, Optional

import torch
from mmengine.model import BaseModule

from mmaction.registry import MODELS
from ..layers import resize_pos_table
from ..selectors import check_budget


@MODELS.register_module()
class SelectiveVisionTransformer(BaseModule):
    """Flux for an unchanged ``mmaction.models.VisionTransformer`` (vit_mae.py).

    The wrapped ViT's own modules (patch embedding, positional table, blocks,
    norm) are used as they are; this wrapper only adds what Flux needs:
    the positional table is interpolated in time *and* space to the input grid
    (MMAction2's ViT interpolates space only), and a token selector keeps
    ``budget`` tokens after the patch embedding. Returns all kept tokens
    (B, K, C), so any pooling head (e.g. :class:`FluxMultiHead`) can follow.

    Args:
        vit: config of MMAction2's ``VisionTransformer`` (its ``num_frames`` and
            ``img_size`` define the stored positional grid).
        selector: token selector config.
    """

    def __init__(self, vit: Dict, selector: Optional[Dict] = dict(type='GroupDynamicSelector'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        vit = dict(vit)
        vit.setdefault('type', 'VisionTransformer')
        vit['return_feat_map'] = True
        self.vit = MODELS.build(vit)
        self.tubelet = self.tubelet_size = int(vit.get('tubelet_size', 2))
        self.patch_size = int(vit.get('patch_size', 16))
        self.pos_frames = int(vit.get('num_frames', 16)) // self.tubelet
        self.pos_side = self.vit.grid_size[0]
        self.embed_dims = self.vit.embed_dims
        self.selector = MODELS.build(selector) if selector is not None else None

    @property
    def blocks(self):
        """The ViT's blocks (the layer-decay optimizer constructor reads them)."""
        return self.vit.blocks

    def positional_embedding(self, frames: int, height: int, width: int) -> torch.Tensor:
        table = self.vit.pos_embed.reshape(self.pos_frames, self.pos_side, self.pos_side,
                                           self.embed_dims)
        return resize_pos_table(table, frames, height, width)

    def forward(self, x: torch.Tensor, budget: Optional[int] = None,
                return_indices: bool = False):
        B, _, T, H, W = x.shape
        p = self.patch_size
        if H % p or W % p or T % self.tubelet:
            raise ValueError(f'Input grid {T}x{H}x{W} must be a multiple of tubelet {self.tubelet} '
                             f'in time and of the patch size {p} in space.')
        frames, hp, wp = T // self.tubelet, H // p, W // p
        tokens = self.vit.patch_embed(x)[0]  # (B, frames * hp * wp, C)
        C = tokens.shape[-1]
        kept = None
        if budget is not None:
            check_budget(budget)
            if budget < tokens.shape[1]:
                if self.selector is None:
                    raise ValueError('A token budget was requested but no selector is configured.')
                kept = self.selector(tokens.detach().reshape(B, frames, hp * wp, C), budget)
        tokens = tokens + self.positional_embedding(frames, hp, wp).to(tokens.dtype)
        if kept is not None:
            tokens = torch.gather(tokens, 1, kept.unsqueeze(-1).expand(-1, -1, C))
        tokens = self.vit.pos_drop(tokens)
        for block in self.vit.blocks:
            tokens = block(tokens)
        tokens = self.vit.norm(tokens)
        if self.vit.fc_norm is not None:
            # use_mean_pooling=True (MMAction2's fine-tuned VideoMAE): its final LayerNorm sits
            # after the mean; the pooling head here needs tokens, so it normalises each one
            tokens = self.vit.fc_norm(tokens)
        return (tokens, kept) if return_indices else tokens

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint of MMAction2's recognizer names the ViT's weights backbone.<name>;
        # here they live under backbone.vit.<name>, so plain ViT checkpoints load as they are
        for key in [k for k in state_dict if k.startswith(prefix)]:
            name = key[len(prefix):]
            if not name.startswith(('vit.', 'selector.')):
                state_dict[f'{prefix}vit.{name}'] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
