"""Layer-wise lr decay reaches every block, whatever the backbone calls them."""
import pytest
from mmengine.optim import build_optim_wrapper

from mmaction.registry import MODELS
from mmflux.engine.optimizers import layer_levels
from conftest import small_plug_and_play_cfg, tiny_model_cfg

RATE = 0.75


def lr_scales(model, optim_wrapper):
    optim = build_optim_wrapper(model, dict(optim_wrapper)).optimizer
    base = optim_wrapper['optimizer']['lr']
    by_id = {id(p): group['lr'] / base for group in optim.param_groups for p in group['params']}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


@pytest.fixture(scope='module')
def plug_and_play():
    cfg = small_plug_and_play_cfg()
    return MODELS.build(cfg.model), cfg.optim_wrapper.to_dict()


def test_plug_and_play_vit_blocks_are_decayed(plug_and_play):
    """Regression: names are backbone.vit.blocks.*, so every parameter got lr x 1.0."""
    model, optim_wrapper = plug_and_play
    depth = 3
    scales = lr_scales(model, optim_wrapper)
    assert scales['backbone.vit.patch_embed.projection.weight'] == pytest.approx(RATE**(depth + 1))
    for i in range(depth):
        assert scales[f'backbone.vit.blocks.{i}.mlp.layers.0.0.weight'] == pytest.approx(
            RATE**(depth - i))
    assert scales['backbone.vit.fc_norm.weight'] == 1.0
    assert scales['cls_head.head.0.weight'] == 1.0
    assert len({round(s, 6) for s in scales.values()}) == depth + 2


def test_fluxvit_levels_match_the_released_rule():
    model = MODELS.build(tiny_model_cfg())
    optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                         constructor='FluxLayerDecayOptimWrapperConstructor',
                         paramwise_cfg=dict(layer_decay_rate=RATE))
    scales = lr_scales(model, optim_wrapper)
    for name in ('backbone.cls_token', 'backbone.pos_embed', 'backbone.patch_embed.proj.weight'):
        assert scales[name] == pytest.approx(RATE**3), name
    assert scales['backbone.blocks.0.attn.qkv.weight'] == pytest.approx(RATE**2)
    assert scales['backbone.blocks.1.mlp.fc1.bias'] == pytest.approx(RATE)
    assert scales['backbone.gpe_proj.depthwise_conv.weight'] == 1.0  # as the released code


def test_levels_come_from_module_identity(plug_and_play):
    model, _ = plug_and_play
    levels = layer_levels(model.backbone)
    assert levels[id(model.backbone.blocks[2].attn.qkv.weight)] == 3
    assert levels[id(model.backbone.vit.patch_embed.projection.bias)] == 0


def test_backbone_without_blocks_is_refused():
    model = MODELS.build(dict(type='Recognizer3D', backbone=dict(type='X3D', gamma_w=1, gamma_b=1,
                                                                 gamma_d=1),
                              cls_head=dict(type='X3DHead', num_classes=2, in_channels=432)))
    with pytest.raises(ValueError, match='needs a backbone with ordered `blocks`'):
        layer_levels(model.backbone)
