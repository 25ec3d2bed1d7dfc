"""Conversion of full-size official S/B key layouts into the mmflux configs."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmflux.utils.checkpoint_convert import (CheckpointMismatchError, convert_official_state_dict,
                                             expected_shapes, infer_arch)
from conftest import REPO_ROOT, official_random_state


def config_model(name):
    return Config.fromfile(osp.join(REPO_ROOT, 'configs', 'fluxvit', name)).model


@pytest.mark.parametrize('size,arch,config', [('small', 'small', 'fluxvit-s14_k400.py'),
                                              ('base', 'base', 'fluxvit-b14_k400.py')])
def test_full_key_lists_convert_exactly(size, arch, config):
    state = official_random_state(size, torch.bfloat16)
    assert len(state) == 246
    facts = infer_arch(state)
    assert facts['arch'] == arch and facts['num_classes'] == 400 and facts['depth'] == 12
    wrapped = {'module': {'encoder.' + k: v for k, v in state.items()}}  # DeepSpeed + prefix
    converted = convert_official_state_dict(wrapped, expected_shapes(config_model(config)))
    assert len(converted) == 246
    assert all(v.dtype == torch.float32 for v in converted.values())
    torch.testing.assert_close(converted['backbone.pos_embed'], state['pos_embed'].float())
    assert 'cls_head.final_clip_decoder_for_projs.1.norm.bias' in converted


def test_wrong_architecture_is_refused_with_keys():
    state = official_random_state('small')
    with pytest.raises(CheckpointMismatchError, match=r'shape mismatches: .*backbone\.'):
        convert_official_state_dict(state, expected_shapes(config_model('fluxvit-b14_k400.py')))


def test_wrong_class_count_is_refused():
    state = official_random_state('small')
    with pytest.raises(CheckpointMismatchError, match='cls_head.head.0.weight'):
        convert_official_state_dict(state, expected_shapes(config_model('fluxvit-s14_ssv2.py')))


def test_missing_and_foreign_keys_are_named():
    state = official_random_state('small')
    del state['blocks.3.mlp.fc1.bias']
    with pytest.raises(CheckpointMismatchError, match=r'missing keys .*blocks\.3\.mlp\.fc1\.bias'):
        convert_official_state_dict(state, expected_shapes(config_model('fluxvit-s14_k400.py')))
    state = official_random_state('small')
    state['text_encoder.weight'] = torch.zeros(3)
    with pytest.raises(CheckpointMismatchError, match='text_encoder.weight'):
        convert_official_state_dict(state)


def test_one_error_for_every_checkpoint_that_does_not_fit():
    from mmflux.utils import checkpoint_fit
    assert CheckpointMismatchError is checkpoint_fit.CheckpointMismatchError
    state = official_random_state('small')
    expected = expected_shapes(config_model('fluxvit-s14_k400.py'))
    del expected['cls_head.head.2.bias']  # a model with a head fewer: the checkpoint has extra keys
    with pytest.raises(checkpoint_fit.CheckpointMismatchError,
                       match=r'unexpected keys: cls_head\.head\.2\.bias'):
        convert_official_state_dict(state, expected)
