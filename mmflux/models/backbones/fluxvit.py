"""FluxViT: a ViT/14 that runs at any grid and any token budget."""
from typing import Dict, Iterator, Optional, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from mmaction.registry import MODELS
from ..backbone_output import BackboneOutput
from ..layers import DepthwiseAffine, DualNormPatchEmbed, FluxBlock, resize_pos_table, sincos_3d
from .base import BaseFluxBackbone

ARCH_SETTINGS: Dict[str, Dict] = {
    # pos_frames x pos_side^2 is the storage grid of the released pos_embed tables
    'small': dict(embed_dims=384, depth=12, num_heads=6, mlp_ratio=4.0, pos_frames=24, pos_side=18),
    'base': dict(embed_dims=768, depth=12, num_heads=12, mlp_ratio=4.0, pos_frames=32, pos_side=20),
}
ARCH_ALIASES = {'s': 'small', 'b': 'base', 'fluxvit-s14': 'small', 'fluxvit-b14': 'base'}


def resolve_arch(arch: Union[str, Dict]) -> Dict:
    if isinstance(arch, str):
        key = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if key not in ARCH_SETTINGS:
            raise ValueError(f'Unknown FluxViT arch {arch!r}; use one of '
                             f'{sorted(ARCH_SETTINGS)} or a dict with keys '
                             f'{sorted(ARCH_SETTINGS["small"])}.')
        return dict(ARCH_SETTINGS[key])
    missing = {'embed_dims', 'depth', 'num_heads'} - set(arch)
    if missing:
        raise ValueError(f'FluxViT arch dict is missing {sorted(missing)}.')
    settings = dict(mlp_ratio=4.0, pos_frames=8, pos_side=16)
    settings.update(arch)
    return settings


@MODELS.register_module()
class FluxViT(BaseFluxBackbone):
    """FluxViT backbone (arXiv 2503.14237), in the released weights' key layout.

    Forward: dual-norm patch embedding -> (optional) token selection for a
    budget -> + global positional embedding resized to the input grid -> blocks.
    :meth:`forward_features` returns a :class:`BackboneOutput` whose tokens are
    (B, 1 + K, C), cls first (``num_prefix_tokens = 1``); K = kept patch tokens.

    Args:
        arch: ``'small'`` / ``'base'`` or a dict with ``embed_dims``, ``depth``,
            ``num_heads`` and optionally ``mlp_ratio``, ``pos_frames``, ``pos_side``
            (the storage grid of ``pos_embed``; any input grid is interpolated).
        patch_size: spatial patch side.
        tubelet_size: frames per patch (1 in the released models); the token
            grid then has T / tubelet_size frames, and budgets count those tokens.
        selector: config of the token selector used when a budget is below the
            number of patch tokens.
        drop_path_rate: stochastic depth, linearly increasing over the blocks.
        layer_scale_init_value: initial LayerScale gamma (0 disables LayerScale).
        use_gpe_proj / use_lpe / dual_patch_norm / qk_norm: the FluxViT modules
            (all on in the released models).
        with_cp: activation checkpointing of every block in training.
    """

    num_prefix_tokens = 1

    def __init__(self,
                 arch: Union[str, Dict] = 'small',
                 patch_size: int = 14,
                 tubelet_size: int = 1,
                 in_channels: int = 3,
                 selector: Optional[Dict] = dict(type='GroupDynamicSelector'),
                 drop_path_rate: float = 0.0,
                 layer_scale_init_value: float = 1e-5,
                 qkv_bias: bool = False,
                 qk_norm: bool = True,
                 use_gpe_proj: bool = True,
                 use_lpe: bool = True,
                 dual_patch_norm: bool = True,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[Dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch(arch)
        self.arch_settings = settings
        self.embed_dims = dim = settings['embed_dims']
        self.depth = settings['depth']
        self.num_heads = settings['num_heads']
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.pos_frames = settings['pos_frames']
        self.pos_side = settings['pos_side']
        self.with_cp = with_cp

        self.patch_embed = DualNormPatchEmbed(dim, patch_size, in_channels, dual_norm=dual_patch_norm,
                                              tubelet_size=tubelet_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        num_rows = 1 + self.pos_frames * self.pos_side**2
        self.pos_embed = nn.Parameter(torch.zeros(1, num_rows, dim))
        self.gpe_proj = DepthwiseAffine(dim) if use_gpe_proj else None
        rates = [drop_path_rate * i / max(self.depth - 1, 1) for i in range(self.depth)]
        self.blocks = nn.ModuleList([
            FluxBlock(dim, self.num_heads, settings['mlp_ratio'], qkv_bias=qkv_bias, qk_norm=qk_norm,
                      use_lpe=use_lpe, layer_scale_init_value=layer_scale_init_value,
                      drop_path=rates[i]) for i in range(self.depth)
        ])
        self.selector = self.build_selector(selector)
        self._pos_cache: Dict[Tuple, torch.Tensor] = {}
        self._init_pos_embed()

    # ------------------------------------------------------------------ init
    def _init_pos_embed(self) -> None:
        if self.pos_embed.is_meta:
            return
        table = sincos_3d(self.embed_dims, self.pos_frames, self.pos_side, self.pos_side)
        with torch.no_grad():
            self.pos_embed.zero_()
            self.pos_embed[0, 1:].copy_(table)

    def init_weights(self) -> None:
        """Released init: trunc-normal(.02) linears, rescaled residual projections."""
        super().init_weights()
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            return
        trunc_normal_(self.cls_token, std=0.02)
        self._init_pos_embed()
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for i, block in enumerate(self.blocks):
            block.attn.proj.weight.data.div_((2.0 * (i + 1))**0.5)
            block.mlp.fc2.weight.data.div_((2.0 * (i + 1))**0.5)

    def train(self, mode: bool = True):
        self._pos_cache.clear()
        return super().train(mode)

    # --------------------------------------------------------- positions
    def positional_embedding(self, frames: int, height: int, width: int) -> torch.Tensor:
        """(frames * height * width, C) patch positions for a grid of patches.

        The stored table (after the per-channel GPE map) is interpolated on its own
        device; in eval mode without grad the result is cached per grid and
        recomputed whenever the parameters change (load, device or dtype move).
        """
        params = [self.pos_embed]
        if self.gpe_proj is not None:
            params += [self.gpe_proj.depthwise_conv.weight, self.gpe_proj.depthwise_conv.bias]
        # exporters trace with fake tensors (no data pointers): no cache while exporting
        use_cache = (not self.training and not torch.is_grad_enabled()
                     and not torch.onnx.is_in_onnx_export() and not torch.compiler.is_compiling()
                     and not torch.jit.is_tracing())
        # inference tensors (parameters created or converted under inference_mode) have
        # no version counter: their data pointer alone identifies them
        key = (frames, height, width, self.pos_embed.device, self.pos_embed.dtype,
               tuple(-1 if p.is_inference() else p._version for p in params),
               tuple(p.data_ptr() for p in params)) if use_cache else None
        if use_cache and key in self._pos_cache:
            return self._pos_cache[key]
        table = self.pos_embed[0, 1:]
        if self.gpe_proj is not None:
            table = self.gpe_proj(table)
        table = table.reshape(self.pos_frames, self.pos_side, self.pos_side, self.embed_dims)
        pos = resize_pos_table(table, frames, height, width)
        if use_cache:
            if len(self._pos_cache) > 64:
                self._pos_cache.clear()
            self._pos_cache[key] = pos
        return pos

    # --------------------------------------------------------- forward
    def embedding_parameters(self) -> Iterator[nn.Parameter]:
        # gpe_proj is not here: the released layer decay gives it the head's lr
        yield from (self.cls_token, self.pos_embed)
        yield from self.patch_embed.parameters()

    def forward_features(self, x: torch.Tensor, budget: Optional[int] = None) -> BackboneOutput:
        """x: (B, C, T, H, W) normalised video; budget: patch tokens to keep (None: all)."""
        if x.dim() != 5:
            raise ValueError(f'FluxViT expects (B, C, T, H, W) inputs, got shape {tuple(x.shape)}.')
        B = x.shape[0]
        grid = self.token_grid(*x.shape[2:])
        tokens = self.patch_embed(x)  # (B, t, h * w, C)
        kept = self.select_tokens(tokens, budget)
        C = self.embed_dims
        pos = self.positional_embedding(*grid).to(tokens.dtype)
        tokens = tokens.reshape(B, -1, C) + pos
        if kept is not None:
            tokens = torch.gather(tokens, 1, kept.unsqueeze(-1).expand(-1, -1, C))
        cls = (self.cls_token + self.pos_embed[:, :1]).to(tokens.dtype).expand(B, -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return BackboneOutput(x, kept, self.num_prefix_tokens, grid)
