"""MMAction2's own VisionTransformer, driven at any grid and token budget."""
from typing import Dict, Iterator, Optional

import torch
from torch import nn

from mmaction.registry import MODELS
from ..backbone_output import BackboneOutput
from ..layers import resize_pos_table
from .base import BaseFluxBackbone


@MODELS.register_module()
class SelectiveVisionTransformer(BaseFluxBackbone):
    """Flux for an unchanged ``mmaction.models.VisionTransformer`` (vit_mae.py).

    The wrapped ViT's own modules (patch embedding, positional table, blocks,
    norm) are used as they are; this wrapper only adds what Flux needs:
    the positional table is interpolated in time *and* space to the input grid
    (MMAction2's ViT interpolates space only), and a token selector keeps
    ``budget`` tokens after the patch embedding. Returns all kept tokens
    (B, K, C): MMAction2's ViT has no cls token (``num_prefix_tokens = 0``), so
    any pooling head (e.g. :class:`FluxMultiHead`) can follow.

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
        # the built ViT is the owner of its sizes: read them off its patch embedding
        conv = self.vit.patch_embed.projection
        self.tubelet_size, self.patch_size = int(conv.stride[0]), int(conv.stride[1])
        self.pos_side = self.vit.grid_size[0]
        self.pos_frames = self.vit.pos_embed.shape[1] // self.pos_side**2
        self.embed_dims = self.vit.embed_dims
        self.selector = self.build_selector(selector)

    @property
    def blocks(self):
        """The ViT's blocks, in order."""
        return self.vit.blocks

    def embedding_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.vit.patch_embed.parameters()
        if isinstance(self.vit.pos_embed, nn.Parameter):  # learnable positions
            yield self.vit.pos_embed

    def positional_embedding(self, frames: int, height: int, width: int) -> torch.Tensor:
        table = self.vit.pos_embed.reshape(self.pos_frames, self.pos_side, self.pos_side,
                                           self.embed_dims)
        return resize_pos_table(table, frames, height, width)

    def forward_features(self, x: torch.Tensor, budget: Optional[int] = None) -> BackboneOutput:
        B = x.shape[0]
        grid = self.token_grid(*x.shape[2:])
        tokens = self.vit.patch_embed(x)[0]  # (B, t * h * w, C)
        C = tokens.shape[-1]
        kept = self.select_tokens(tokens.reshape(B, grid[0], grid[1] * grid[2], C), budget)
        tokens = tokens + self.positional_embedding(*grid).to(tokens.dtype)
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
        return BackboneOutput(tokens, kept, self.num_prefix_tokens, grid)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint of MMAction2's recognizer names the ViT's weights backbone.<name>;
        # here they live under backbone.vit.<name>, so plain ViT checkpoints load as they are
        for key in [k for k in state_dict if k.startswith(prefix)]:
            name = key[len(prefix):]
            if not name.startswith(('vit.', 'selector.')):
                state_dict[f'{prefix}vit.{name}'] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
