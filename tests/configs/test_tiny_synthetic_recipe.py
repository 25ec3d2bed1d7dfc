"""The shipped tiny synthetic recipe: its model accepts every grid its sampler draws."""
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config

from mmflux.datasets.flux_batch_sampler import flux_grid_pairs, with_backbone_geometry
from mmflux.utils.flops import count_macs
from conftest import TINY_RECIPE


def test_tiny_recipe_trains_on_every_sampled_grid():
    cfg = Config.fromfile(TINY_RECIPE)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # the sampler as FluxRunner builds it: with the backbone's patch and tubelet sizes
    sampler = with_backbone_geometry(cfg.train_dataloader.batch_sampler, model.backbone)
    pairs = flux_grid_pairs(sampler['frames'], sampler['sides'], sampler['token_window'],
                            patch_size=sampler['patch_size'],
                            tubelet_size=sampler['tubelet_size'])
    samples = [ActionDataSample().set_gt_label(i) for i in range(2)]
    lo, hi = sampler['token_window']
    for frames, side in (pairs[0], pairs[len(pairs) // 2], pairs[-1]):
        losses = model.loss(torch.randn(2, 3, frames, side, side), samples)
        assert {k for k in losses if 'loss' in k} == {'loss_cls_0', 'loss_cls_1', 'loss_align_1',
                                                      'loss_cls_2', 'loss_align_2'}
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
        assert model.backbone.patch_embed.proj.weight.grad is not None
        model.zero_grad()
        tokens = count_macs(model, frames, side, side)['grid_tokens']
        assert lo <= tokens <= hi
    # the standard test grid keeps every token at the test budget
    test = count_macs(model, 8, 56, 56, budget=cfg.model.test_cfg.token_budget)
    assert test['tokens'] == test['grid_tokens'] == 256
