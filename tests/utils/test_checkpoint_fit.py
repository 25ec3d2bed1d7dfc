"""Inference refuses checkpoints that do not fit the model (mmengine only warns)."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from mmflux.utils.checkpoint_fit import (CheckpointMismatchError, check_checkpoint_file,
                                         check_checkpoint_fits, load_for_inference)
from conftest import tiny_model_cfg


def build(**backbone):
    init_default_scope('mmaction')
    return MODELS.build(tiny_model_cfg(backbone=backbone))


def test_other_patch_size_is_refused_with_key_shapes_and_fix(tmp_path):
    path = tmp_path / 'patch14.pth'
    torch.save(dict(state_dict=build().state_dict()), path)
    model = build(patch_size=7)
    with pytest.raises(CheckpointMismatchError) as err:
        load_for_inference(model, str(path))
    text = str(err.value)
    assert str(path) in text and 'patch_embed' in text
    assert 'checkpoint [64, 3, 1, 14, 14] vs model [64, 3, 1, 7, 7]' in text
    assert 'Fix:' in text
    # mmengine's own loader would have accepted it with a warning
    with pytest.raises(CheckpointMismatchError):
        check_checkpoint_file(model, str(path))


def test_missing_weights_are_named():
    model = build()
    state = model.state_dict()
    removed = [k for k in state if k.startswith('cls_head.')][:2]
    for key in removed:
        del state[key]
    with pytest.raises(CheckpointMismatchError, match='missing from the checkpoint') as err:
        check_checkpoint_fits(model, state, 'x.pth')
    assert all(key in str(err.value) for key in removed)


def test_fitting_checkpoint_loads_exactly_and_reports_unused_keys(tmp_path):
    source, target = build(), build()
    state = {f'module.{k}': v for k, v in source.state_dict().items()}  # a DDP-saved file
    state['module.teacher.weight'] = torch.zeros(3)
    path = tmp_path / 'ddp.pth'
    torch.save(dict(state_dict=state), path)
    assert not torch.equal(source.backbone.patch_embed.proj.weight, target.backbone.patch_embed.proj.weight)
    load_for_inference(target, str(path))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    assert check_checkpoint_fits(target, {k[7:]: v for k, v in state.items()}) == ['teacher.weight']
