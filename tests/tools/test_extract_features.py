"""Features at a budget: one .npy per video, failed videos named and counted."""
import csv
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config

from mmaction.registry import MODELS
from conftest import load_tool, write_tiny_train_config


def test_features_at_a_budget_with_a_broken_video(tiny_motion_data, tmp_path):
    config = write_tiny_train_config(tmp_path, tiny_motion_data)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    ckpt = tmp_path / 'w.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    lines = open(osp.join(tiny_motion_data, 'test.txt')).read().splitlines()[:3]
    with open(osp.join(tiny_motion_data, 'videos', 'broken.mp4'), 'wb') as f:
        f.write(b'not a video')
    ann = tmp_path / 'list.txt'
    ann.write_text('\n'.join(lines + ['broken.mp4 0']) + '\n')
    out = tmp_path / 'feats'
    load_tool('extract_features').main([config, str(ckpt), str(ann), '--budget', '16', '--grid',
                                        '6', '42', '--save-tokens', '--out', str(out)])
    rows = list(csv.DictReader(open(out / 'features.csv')))
    assert len(rows) == 3 and {r['kept_tokens'] for r in rows} == {'16'}
    assert {r['head'] for r in rows} == {'2'}  # the head trained for 16 tokens
    feature = np.load(out / rows[0]['feature'])
    assert feature.shape == (32, ) and np.isfinite(feature).all()
    kept = np.load(out / rows[0]['feature'].replace('.npy', '_kept.npy'))
    assert kept.shape == (6, 16) and kept.max() < 6 * 3 * 3  # 6 views; 6 frames x 3 x 3 patches
    assert 'broken.mp4' in (out / 'failed.txt').read_text()
