"""Bad and unusual videos through the robust datasets and pipelines, in process (fast)."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmaction.registry import DATASETS, TRANSFORMS
from mmflux.datasets.robust_dataset import (FAIL_REASON_KEY, FAILED_KEY, FILENAME_KEY,
                                            SKIPPED_KEY, BadVideoError, RobustCompose)
from mmflux.engine.hooks.bad_video_hook import skipped_in_batch
from conftest import tiny_model_cfg
from robust_utils import BAD_KINDS, GOOD_KINDS, build_video_set, write_video

SIDE = 56
FRAMES = 8


def train_pipeline(resize=True):
    steps = [dict(type='DecordInit'), dict(type='FluxUniformSample', clip_len=FRAMES),
             dict(type='DecordDecode')]
    if resize:
        steps.append(dict(type='Resize', scale=(-1, 112)))
    return steps + [
        dict(type='ClipRandAugment', config_str='rand-m5-n2-mstd0.5-inc1'),
        dict(type='FluxRandomResizedCrop', size=SIDE, area_range=(0.3, 1.0)),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs')
    ]


def eval_pipeline(crop='ThreeCrop', resize=True, num_clips=2):
    steps = [dict(type='DecordInit'),
             dict(type='FluxUniformSample', clip_len=FRAMES, num_clips=num_clips, test_mode=True),
             dict(type='DecordDecode')]
    if resize:
        steps.append(dict(type='Resize', scale=(-1, SIDE)))
    return steps + [dict(type=crop, crop_size=SIDE), dict(type='FormatShape', input_format='NCTHW'),
                    dict(type='PackActionInputs')]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('videos'))
    video_dir, ann_file, bad = build_video_set(root, num_plain=3)
    return video_dir, ann_file, bad


def build(videos, pipeline, test_mode, dataset='FluxVideoDataset', **kwargs):
    video_dir, ann_file, _ = videos
    return DATASETS.build(dict(type=dataset, ann_file=ann_file, data_prefix=dict(video=video_dir),
                               pipeline=pipeline, test_mode=test_mode, **kwargs))


def index_of(dataset, name):
    for i in range(len(dataset)):
        if osp.basename(dataset.get_data_info(i)['filename']) == name:
            return i
    raise KeyError(name)


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize('kind', GOOD_KINDS)
@pytest.mark.parametrize('resize', [True, False])
def test_unusual_videos_train(videos, kind, resize):
    """1 and 3 frames, grayscale, 20x20 and 97x61 frames train at any grid."""
    dataset = build(videos, train_pipeline(resize), test_mode=False)
    index = index_of(dataset, f'{kind}.mp4')
    for frames, side in ((4, 56), (16, 70)):
        out = dataset[(index, frames, side)]
        assert out['inputs'].shape == (1, 3, frames, side, side), kind
        assert SKIPPED_KEY not in out['data_samples'].metainfo  # not replaced
    assert dataset.num_bad_videos == 0


@pytest.mark.parametrize('kind', BAD_KINDS)
def test_bad_video_skipped_in_training(videos, kind, log_messages):
    dataset = build(videos, train_pipeline(), test_mode=False, num_repeats=2)
    index = index_of(dataset, f'{kind}.mp4')
    np.random.seed(0)
    out = dataset[(index, 6, 70)]
    assert isinstance(out, list) and len(out) == 2  # repeated augmentation kept
    for view in out:
        assert view['inputs'].shape == (1, 3, 6, 70, 70)  # the batch's grid is kept
    skipped = out[0]['data_samples'].metainfo[SKIPPED_KEY]
    assert skipped[0][0].endswith(f'{kind}.mp4')
    assert skipped[0][1]  # a reason
    assert dataset.num_bad_videos == len(skipped)
    assert any(m.startswith('skipped ') and f'{kind}.mp4' in m for m in log_messages)
    # the hook reads the records from a collated batch
    batch = dict(data_samples=[o['data_samples'] for o in out])
    assert skipped_in_batch(batch) == [tuple(s) for s in skipped]


def test_skip_reasons_name_the_problem(videos, log_messages):
    dataset = build(videos, train_pipeline(), test_mode=False)
    np.random.seed(1)
    for kind in BAD_KINDS:
        dataset[(index_of(dataset, f'{kind}.mp4'), 4, 56)]
    text = '\n'.join(log_messages)
    assert 'missing.mp4: missing file; FileNotFoundError' in text
    assert 'empty.mp4: empty file (0 bytes)' in text
    assert 'truncated.mp4: RuntimeError' in text and '(in DecordInit)' in text
    assert 'corrupt.mp4: ' in text


def test_raise_policy(videos):
    dataset = build(videos, train_pipeline(), test_mode=False, bad_video_policy='raise')
    with pytest.raises(BadVideoError, match=r'truncated\.mp4: .*bad_video_policy'):
        dataset[(index_of(dataset, 'truncated.mp4'), 4, 56)]
    test_set = build(videos, eval_pipeline(), test_mode=True, dataset='RobustVideoDataset',
                     bad_video_policy='raise')
    with pytest.raises(BadVideoError, match=r'missing\.mp4'):
        test_set[index_of(test_set, 'missing.mp4')]


def test_unknown_policy_is_refused(videos):
    with pytest.raises(ValueError, match="bad_video_policy='ignore'"):
        build(videos, train_pipeline(), test_mode=False, bad_video_policy='ignore')


def test_pipeline_none_is_named(videos, log_messages):
    """A transform returning None is a skip with its name, not a silent refetch."""

    @TRANSFORMS.register_module(force=True)
    class RejectOneFrame:  # noqa: D401 - test transform

        def __call__(self, results):
            return None if results['total_frames'] == 1 else results

    pipeline = [dict(type='DecordInit'), dict(type='RejectOneFrame')] + train_pipeline()[1:]
    dataset = build(videos, pipeline, test_mode=False)
    out = dataset[(index_of(dataset, 'one_frame.mp4'), 4, 56)]
    assert out['data_samples'].metainfo[SKIPPED_KEY][0][1] == \
        'the pipeline returned None at RejectOneFrame'


def test_every_bad_training_sample_raises_in_the_end(tmp_path):
    video_dir = tmp_path / 'v'
    video_dir.mkdir()
    (tmp_path / 'list.txt').write_text('nothing_a.mp4 0\nnothing_b.mp4 1\n')
    dataset = DATASETS.build(dict(type='FluxVideoDataset', ann_file=str(tmp_path / 'list.txt'),
                                  data_prefix=dict(video=str(video_dir)),
                                  pipeline=train_pipeline(), max_refetch=3))
    with pytest.raises(BadVideoError, match='no usable video after 4 tries'):
        dataset[(0, 4, 56)]


# ------------------------------------------------------------------------------ testing
@pytest.mark.parametrize('crop,resize', [('ThreeCrop', True), ('CenterCrop', True),
                                         ('TenCrop', True), ('CenterCrop', False),
                                         ('TenCrop', False)])
def test_unusual_videos_test_mode(videos, crop, resize):
    dataset = build(videos, eval_pipeline(crop, resize), test_mode=True,
                    dataset='RobustVideoDataset')
    views = {'ThreeCrop': 3, 'CenterCrop': 1, 'TenCrop': 10}[crop] * 2
    for kind in GOOD_KINDS:
        out = dataset[index_of(dataset, f'{kind}.mp4')]
        assert out['inputs'].shape == (views, 3, FRAMES, SIDE, SIDE), kind
        assert not out['data_samples'].metainfo.get(FAILED_KEY)


@pytest.mark.parametrize('kind', BAD_KINDS)
def test_bad_video_marked_not_replaced_in_test_mode(videos, kind, log_messages):
    dataset = build(videos, eval_pipeline(), test_mode=True, dataset='RobustVideoDataset')
    good = dataset[index_of(dataset, 'plain_0.mp4')]
    out = dataset[index_of(dataset, f'{kind}.mp4')]
    meta = out['data_samples'].metainfo
    assert meta[FAILED_KEY] is True
    assert meta[FILENAME_KEY].endswith(f'{kind}.mp4')
    assert meta[FAIL_REASON_KEY]
    assert out['inputs'].shape == good['inputs'].shape  # stacks with real samples
    assert int(out['data_samples'].gt_label) == int(dataset.get_data_info(
        index_of(dataset, f'{kind}.mp4'))['label'])
    assert any(m.startswith('failed ') and f'{kind}.mp4' in m for m in log_messages)


def test_flux_dataset_marks_in_test_mode_too(videos):
    dataset = build(videos, eval_pipeline(), test_mode=True)
    out = dataset[index_of(dataset, 'corrupt.mp4')]
    assert out['data_samples'].metainfo[FAILED_KEY] is True


def test_recognizer_predicts_on_a_marker_batch(videos):
    """The recognizer needs no change: a placeholder is an ordinary (black) clip."""
    from mmengine.dataset import pseudo_collate
    from mmaction.registry import MODELS
    dataset = build(videos, eval_pipeline(num_clips=1), test_mode=True,
                    dataset='RobustVideoDataset')
    batch = pseudo_collate([dataset[index_of(dataset, name)]
                            for name in ('plain_0.mp4', 'missing.mp4', 'empty.mp4')])
    model = MODELS.build(tiny_model_cfg(num_classes=6, budgets=(96, 64, 32), token_budget=32))
    model.eval()
    with torch.no_grad():
        preds = model.test_step(batch)
    assert len(preds) == 3
    assert all(torch.isfinite(p.pred_score).all() for p in preds)
    assert [bool(p.metainfo.get(FAILED_KEY)) for p in preds] == [False, True, True]


# ------------------------------------------------------------------------------- guards
def _frames(h, w, n=4, channels=3):
    shape = (h, w) if channels is None else (h, w, channels)
    return dict(imgs=[np.full(shape, 7, np.uint8) for _ in range(n)], img_shape=(h, w),
                original_shape=(h, w), filename='synthetic.mp4')


@pytest.mark.parametrize('crop', [dict(type='CenterCrop', crop_size=56),
                                  dict(type='ThreeCrop', crop_size=56),
                                  dict(type='TenCrop', crop_size=56),
                                  dict(type='RandomCrop', size=56)])
@pytest.mark.parametrize('hw', [(20, 20), (40, 97), (61, 30), (55, 200), (1, 1)])
def test_crops_upscale_small_frames(crop, hw):
    pipeline = RobustCompose([crop])
    out = pipeline(_frames(*hw))
    assert {img.shape for img in out['imgs']} == {(56, 56, 3)}


def test_three_crop_without_resize_is_a_clear_error():
    with pytest.raises(ValueError, match=r'ThreeCrop.*put Resize\(scale=\(-1, 56\)\)'):
        RobustCompose([dict(type='ThreeCrop', crop_size=56)])(_frames(64, 80))


def test_plain_mmaction_crop_is_silently_wrong_without_the_guard():
    """Why the guard exists: MMAction2's CenterCrop on a 40x40 frame gives 8x8."""
    out = TRANSFORMS.build(dict(type='CenterCrop', crop_size=56))(_frames(40, 40))
    assert out['imgs'][0].shape[:2] != (56, 56)


def test_flux_random_resized_crop_on_tiny_frames():
    pipeline = RobustCompose([dict(type='FluxRandomResizedCrop', size=56)])
    for hw in [(1, 1), (3, 97), (20, 20), (61, 97)]:
        results = _frames(*hw)
        results['flux_side'] = 70
        assert {img.shape for img in pipeline(results)['imgs']} == {(70, 70, 3)}


@pytest.mark.parametrize('channels', [None, 1, 4])
def test_decoded_frames_become_three_channels(channels):

    @TRANSFORMS.register_module(force=True)
    class FakeDecode:

        def __call__(self, results):
            results.update(_frames(30, 40, channels=channels))
            return results

    out = RobustCompose([dict(type='FakeDecode')])({})
    assert {img.shape for img in out['imgs']} == {(30, 40, 3)}


def test_decoder_without_frames_is_an_error():

    @TRANSFORMS.register_module(force=True)
    class EmptyDecode:

        def __call__(self, results):
            results['imgs'] = []
            return results

    with pytest.raises(ValueError, match='decoded no frames'):
        RobustCompose([dict(type='EmptyDecode')])({})


def test_grayscale_mp4_decodes_as_three_channels(tmp_path):
    import decord
    path = write_video(str(tmp_path / 'g.mp4'), num_frames=3, color=False)
    frames = decord.VideoReader(path).get_batch([0, 1, 2]).asnumpy()
    assert frames.shape[-1] == 3


@TRANSFORMS.register_module(force=True)
class OddSizeDecode:
    """Decoder stand-in: frames of ``results['hw']`` (cv2's writers round odd sizes)."""

    def __call__(self, results):
        h, w = results['hw']
        n = len(results['frame_inds'])
        rng = np.random.default_rng(0)
        results['imgs'] = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]
        results['original_shape'] = results['img_shape'] = (h, w)
        return results


@pytest.mark.parametrize('hw', [(61, 97), (97, 61), (1, 1), (7, 300), (33, 33)])
def test_odd_frame_sizes_through_train_and_test_pipelines(hw):
    base = dict(total_frames=3, start_index=0, hw=hw, label=0, filename='odd.mp4')
    train = RobustCompose([dict(type='FluxUniformSample', clip_len=FRAMES),
                           dict(type='OddSizeDecode')] + train_pipeline()[3:])
    out = train(dict(base, flux_frames=6, flux_side=70))
    assert out['inputs'].shape == (1, 3, 6, 70, 70)
    for crop, views in (('ThreeCrop', 6), ('CenterCrop', 2)):
        test = RobustCompose([dict(type='FluxUniformSample', clip_len=FRAMES, num_clips=2,
                                   test_mode=True), dict(type='OddSizeDecode')] +
                             eval_pipeline(crop)[3:])
        assert test(dict(base))['inputs'].shape == (views, 3, FRAMES, SIDE, SIDE)
