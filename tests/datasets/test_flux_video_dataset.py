import cv2
import numpy as np
import pytest
import torch

import mmflux  # noqa: F401
from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from mmengine.registry import FUNCTIONS, init_default_scope
from mmengine.runner import Runner
from mmflux.datasets import FluxBatchSampler, FluxRawframeDataset, FluxVideoDataset

init_default_scope('mmaction')


def write_video(path, num_frames=40, w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (w, h))
    for i in range(num_frames):
        frame = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        frame[:, :, 0] = i * 6
        writer.write(frame)
    writer.release()


@pytest.fixture(scope='module')
def video_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('videos')
    write_video(root / 'a.mp4', seed=0)
    write_video(root / 'b.mp4', num_frames=30, seed=1)
    (root / 'ann.txt').write_text('a.mp4 3\nb.mp4 1\n')
    return root


def train_pipeline(sampler='FluxUniformSample', flip=True):
    pipeline = [
        dict(type='DecordInit'),
        dict(type=sampler, clip_len=8),
        dict(type='DecordDecode'),
        dict(type='ClipRandAugment'),
        dict(type='FluxRandomResizedCrop'),
    ]
    if flip:
        pipeline.append(dict(type='Flip', flip_ratio=0.5))
    return pipeline + [
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs')
    ]


def build(video_dir, pipeline, **kwargs):
    return DATASETS.build(
        dict(type='FluxVideoDataset', ann_file=str(video_dir / 'ann.txt'),
             data_prefix=dict(video=str(video_dir)), pipeline=pipeline, **kwargs))


def test_tuple_index_sets_grid_and_pipeline_shape(video_dir):
    dataset = build(video_dir, train_pipeline())
    assert isinstance(dataset, FluxVideoDataset)
    out = dataset[(0, 6, 28)]
    assert out['inputs'].shape == (1, 3, 6, 28, 28)
    assert out['inputs'].dtype == torch.uint8
    assert int(out['data_samples'].gt_label) == 3
    out = dataset[(1, 10, 56)]
    assert out['inputs'].shape == (1, 3, 10, 56, 56)
    info = dataset.get_data_info(0)
    assert 'flux_frames' not in info
    # int index: configured defaults (clip_len=8, size=224)
    assert dataset[0]['inputs'].shape == (1, 3, 8, 224, 224)


def test_ssv2_pipeline_without_flip(video_dir):
    dataset = build(video_dir, train_pipeline('SSv2Sample', flip=False))
    assert dataset[(1, 12, 42)]['inputs'].shape == (1, 3, 12, 42, 42)


def test_val_pipeline_int_index(video_dir):
    pipeline = [
        dict(type='DecordInit'),
        dict(type='FluxUniformSample', clip_len=4, num_clips=4, test_mode=True),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(-1, 28)),
        dict(type='ThreeCrop', crop_size=28),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs')
    ]
    dataset = build(video_dir, pipeline, test_mode=True)
    assert dataset[0]['inputs'].shape == (12, 3, 4, 28, 28)


@TRANSFORMS.register_module()
class _FailOnFirstVideo:
    """Test helper: 'broken' first video."""

    def __call__(self, results):
        return None if results['sample_idx'] == 0 else results


def test_refetch_keeps_the_grid(video_dir):
    pipeline = train_pipeline()
    pipeline.insert(0, dict(type='_FailOnFirstVideo'))
    dataset = build(video_dir, pipeline)
    out = dataset[(0, 6, 28)]  # replaced by video 1 with the same grid
    assert out['inputs'].shape == (1, 3, 6, 28, 28)
    assert int(out['data_samples'].gt_label) == 1


def test_repeated_augmentation_decodes_once_and_collates_flat(video_dir):
    dataset = build(video_dir, train_pipeline(), num_repeats=2)
    assert dataset._repeat_start == 3  # after DecordDecode
    decode = dataset.pipeline.transforms[2]
    decoded = []
    original = decode.transform
    decode.transform = lambda results: decoded.append(
        results['frame_inds'].copy()) or original(results)
    out = dataset[(0, 6, 28)]
    assert len(decoded) == 1 and len(decoded[0]) == 6  # one decode, one sampling
    assert isinstance(out, list) and len(out) == 2
    for view in out:
        assert view['inputs'].shape == (1, 3, 6, 28, 28)
    assert not torch.equal(out[0]['inputs'], out[1]['inputs'])  # independent aug
    collate = FUNCTIONS.get('repeat_pseudo_collate')
    batch = collate([dataset[(0, 6, 28)], dataset[(1, 6, 28)]])
    assert len(batch['inputs']) == 4 and len(batch['data_samples']) == 4
    assert [int(s.gt_label) for s in batch['data_samples']] == [3, 3, 1, 1]

    preprocessor = MODELS.build(
        dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
             std=[58.395, 57.12, 57.375], format_shape='NCTHW',
             blending=dict(type='FluxBatchAugment', num_classes=5,
                           erasing=dict(prob=0.25, mode='pixel'))))
    data = preprocessor(batch, training=True)
    assert data['inputs'].shape == (4, 1, 3, 6, 28, 28)
    labels = torch.stack([s.gt_label for s in data['data_samples']])
    assert labels.shape == (4, 5)
    torch.testing.assert_close(labels.sum(1), torch.ones(4))


def test_repeat_configuration_errors(video_dir):
    with pytest.raises(ValueError, match='num_repeats'):
        build(video_dir, train_pipeline(), num_repeats=0)
    with pytest.raises(ValueError, match='only for training'):
        build(video_dir, train_pipeline(), num_repeats=2, test_mode=True)
    with pytest.raises(ValueError, match='decoder'):
        build(video_dir, [dict(type='PackActionInputs')], num_repeats=2)
    dataset = build(video_dir, train_pipeline(), num_repeats=2,
                    repeat_from='FluxRandomResizedCrop')
    assert dataset._repeat_start == 4


def test_runner_builds_the_recommended_train_dataloader(video_dir):
    dataloader = Runner.build_dataloader(
        dict(batch_size=2,
             num_workers=0,
             sampler=dict(type='DefaultSampler', shuffle=True),
             batch_sampler=dict(type='FluxBatchSampler', frames=(6, 26, 2),
                                sides=(112, 364, 28), token_window=(2048, 6144),
                                patch_size=14, tubelet_size=1, seed=None),
             collate_fn=dict(type='repeat_pseudo_collate'),
             dataset=dict(type='FluxVideoDataset', ann_file=str(video_dir / 'ann.txt'),
                          data_prefix=dict(video=str(video_dir)),
                          pipeline=train_pipeline(), num_repeats=2)),
        seed=0)
    sampler = dataloader.batch_sampler
    assert isinstance(sampler, FluxBatchSampler) and sampler.seed == 0
    assert len(dataloader) == 1
    (batch, ) = list(dataloader)
    frames, side = sampler.grid_for(0, 0)
    assert [x.shape for x in batch['inputs']] == [(1, 3, frames, side, side)] * 4


def test_rawframe_dataset(tmp_path):
    frame_dir = tmp_path / 'v0'
    frame_dir.mkdir()
    for i in range(12):
        cv2.imwrite(str(frame_dir / f'img_{i + 1:05d}.jpg'),
                    np.full((24, 32, 3), i * 10, np.uint8))
    (tmp_path / 'ann.txt').write_text('v0 12 2\n')
    pipeline = [
        dict(type='FluxUniformSample', clip_len=4),
        dict(type='RawFrameDecode'),
        dict(type='FluxRandomResizedCrop'),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs')
    ]
    dataset = DATASETS.build(
        dict(type='FluxRawframeDataset', ann_file=str(tmp_path / 'ann.txt'),
             data_prefix=dict(img=str(tmp_path)), pipeline=pipeline, start_index=1,
             num_repeats=2))
    assert isinstance(dataset, FluxRawframeDataset)
    out = dataset[(0, 6, 14)]
    assert [v['inputs'].shape for v in out] == [(1, 3, 6, 14, 14)] * 2


def mmaction_random_pipeline():
    """MMAction2's own random transforms (numpy / random global generators)."""
    return [
        dict(type='DecordInit'),
        dict(type='UniformSample', clip_len=8, num_clips=1),
        dict(type='DecordDecode'),
        dict(type='RandomResizedCrop', area_range=(0.3, 1.0)),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='Flip', flip_ratio=0.5),
        dict(type='ColorJitter'),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs')
    ]


def test_keyed_sample_seed_fixes_mmaction_transforms(video_dir):
    dataset = build(video_dir, mmaction_random_pipeline())
    key = (0, 8, 32, 1234)
    np.random.seed(1)
    first = dataset[key]['inputs']
    np.random.seed(2)  # another global state (another worker, a restart)
    assert torch.equal(dataset[key]['inputs'], first)
    others = [dataset[(0, 8, 32, seed)]['inputs'] for seed in range(6)]
    assert not all(torch.equal(o, first) for o in others)  # the seed does drive the draws


def test_keyed_batches_do_not_depend_on_the_workers(video_dir):
    """Same batches with 0 and 2 workers, in each epoch; another epoch, other draws."""
    dataset = build(video_dir, mmaction_random_pipeline())
    sampler = FluxBatchSampler(list(range(2)) * 4, batch_size=2, frames=8, sides=28,
                               token_window=None, patch_size=14, tubelet_size=1, seed=5)

    def epoch_inputs(workers, epoch):
        sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                             num_workers=workers,
                                             collate_fn=lambda b: [x['inputs'] for x in b])
        return [x for batch in loader for x in batch]

    for epoch in (0, 1):
        serial, parallel = epoch_inputs(0, epoch), epoch_inputs(2, epoch)
        assert len(serial) == 8
        assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert not all(torch.equal(a, b) for a, b in zip(epoch_inputs(0, 0), epoch_inputs(0, 1)))
