"""Pointing the tiny config at another dataset with top-level --cfg-options."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmflux.engine.config_check import check_flux_config
from mmflux.compat.dataset_overrides import apply_dataset_overrides
from conftest import TINY_RECIPE


def _load(options):
    cfg = Config.fromfile(TINY_RECIPE)
    cfg.merge_from_dict(options)
    apply_dataset_overrides(cfg, options)
    return cfg


def test_data_root_and_num_classes_reach_loaders_and_head(tmp_path):
    root = str(tmp_path / 'other')
    cfg = _load({'data_root': root, 'num_classes': 9})
    assert cfg.model.cls_head.num_classes == 9
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'),
                          ('test_dataloader', 'test')):
        dataset = cfg[loader].dataset
        assert dataset.ann_file == osp.join(root, f'{split}.txt')
        assert dataset.data_prefix.video == osp.join(root, 'videos')


def test_single_keys_and_full_keys_win(tmp_path):
    cfg = _load({'ann_file_train': 'a.txt', 'video_root': '/v',
                 'val_dataloader.dataset.ann_file': 'explicit.txt', 'ann_file_val': 'ignored.txt'})
    assert cfg.train_dataloader.dataset.ann_file == 'a.txt'
    assert cfg.val_dataloader.dataset.ann_file == 'explicit.txt'
    assert cfg.test_dataloader.dataset.data_prefix.video == '/v'
    assert cfg.test_dataloader.dataset.ann_file == 'data/synthetic_motion/test.txt'


def test_labels_beyond_num_classes_are_named(tmp_path):
    ann = tmp_path / 'train.txt'
    ann.write_text('a.mp4 0\nb.mp4 7\n')
    cfg = _load({'ann_file_train': str(ann)})
    with pytest.raises(ValueError, match=r'has label 7 \(.*train.txt line 2.*\) but model.cls_head.num_classes=6.*num_classes=8'):
        check_flux_config(cfg)
    check_flux_config(_load({'ann_file_train': str(ann), 'num_classes': 8}))
