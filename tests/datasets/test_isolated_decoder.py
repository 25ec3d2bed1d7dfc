"""decord in a child process: a crash costs one video, normal videos decode as before."""
import os.path as osp

import decord
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmaction.registry import DATASETS, TRANSFORMS
from mmflux.datasets.isolated_decoder import DecoderCrashError, IsolatedDecoder
from mmflux.datasets.robust_dataset import FAIL_REASON_KEY, FAILED_KEY, RobustCompose
from robust_utils import truncate_file, write_mjpg_avi, write_video

# where a 20-frame MJPG AVI is cut: decord 0.6.0 segfaults opening most of these from bytes
FRACTIONS = (0.2, 0.35, 0.5, 0.6, 0.8, 0.95)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp('isolated')
    whole = write_mjpg_avi(str(root / 'whole.avi'))
    cut = {f: truncate_file(whole, str(root / f'cut_{int(f * 100)}.avi'), f) for f in FRACTIONS}
    plain = write_video(str(root / 'plain.mp4'), num_frames=12)
    return dict(root=str(root), whole=whole, cut=cut, plain=plain)


def pipeline(mode='accurate', isolate=True):
    steps = [dict(type='DecordInit'),
             dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
             dict(type='DecordDecode', mode=mode)]
    return RobustCompose([TRANSFORMS.build(s) for s in steps], isolate_decoder=isolate)


@pytest.mark.parametrize('mode', ['accurate', 'efficient'])
def test_isolated_frames_equal_in_process_frames(clips, mode):
    for path in (clips['whole'], clips['plain']):
        inds = None
        got = pipeline(mode)(dict(filename=path, start_index=0, modality='RGB'))
        inds = got['frame_inds']
        reader = decord.VideoReader(path, num_threads=1)  # independent oracle: decord by path
        if mode == 'accurate':
            want = reader.get_batch(list(inds)).asnumpy()
        else:
            want = []
            for i in inds:
                reader.seek(int(i))
                want.append(reader.next().asnumpy())
        assert got['total_frames'] == len(reader)
        np.testing.assert_array_equal(np.stack(got['imgs']), np.stack(want))


def test_every_truncation_point_is_contained(clips):
    """Whatever happens in the decoder (crash, error, partial decode) this process goes on."""
    compose = pipeline()
    crashes = 0
    for fraction, path in clips['cut'].items():
        try:
            out = compose(dict(filename=path, start_index=0, modality='RGB'))
        except DecoderCrashError as err:
            crashes += 1
            assert 'the decoder crashed (SIGSEGV, signal 11)' in str(err)
            continue
        except Exception:  # noqa: BLE001 - an ordinary error: a bad video, handled as before
            continue
        assert len(out['imgs']) == 4
    assert crashes >= 1  # decord 0.6.0 crashes on this file (20-80% cut)
    # the decoder restarts: the next good video decodes
    out = compose(dict(filename=clips['plain'], start_index=0, modality='RGB'))
    assert len(out['imgs']) == 4
    assert compose.fallback.isolated.num_crashes == crashes


def test_a_hung_decoder_is_killed_and_named(clips):
    decoder = IsolatedDecoder(timeout=1e-6)  # no answer can come that fast
    with pytest.raises(DecoderCrashError, match=r'did not answer within 1e-06 s and was killed'):
        decoder.open(clips['plain'])
    decoder.timeout = 60.0
    assert len(decoder.open(clips['plain'])) == 12  # a new child serves the next video
    decoder.close()


@pytest.mark.parametrize('test_mode', [True, False])
def test_dataset_with_workers_survives_a_segfaulting_video(clips, tmp_path, test_mode):
    names = ['plain.mp4', 'cut_60.avi', 'whole.avi', 'cut_35.avi']
    ann = tmp_path / 'list.txt'
    ann.write_text(''.join(f'{n} {i}\n' for i, n in enumerate(names)))
    steps = [dict(type='DecordInit'),
             dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
             dict(type='DecordDecode'), dict(type='Resize', scale=(32, 32), keep_ratio=False),
             dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
    dataset = DATASETS.build(dict(type='RobustVideoDataset', ann_file=str(ann),
                                  data_prefix=dict(video=clips['root']), pipeline=steps,
                                  test_mode=test_mode))
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2,
                                         collate_fn=pseudo_collate)
    samples = [s for batch in loader for s in batch['data_samples']]
    assert len(samples) == 4  # no worker died
    if test_mode:
        failed = {osp.basename(s.metainfo['filename']): s.metainfo[FAIL_REASON_KEY]
                  for s in samples if s.metainfo.get(FAILED_KEY)}
        assert 'cut_60.avi' in failed and 'DecoderCrashError' in failed['cut_60.avi']
        assert 'plain.mp4' not in failed and 'whole.avi' not in failed
    else:
        skipped = [p for s in samples for p, _ in s.metainfo.get('skipped_videos', [])]
        assert any(p.endswith('cut_60.avi') for p in skipped)


CONTAINERS = [('MJPG', 'avi'), ('MJPG', 'mkv'), ('MJPG', 'mov'), ('mp4v', 'mp4'), ('mp4v', 'avi'),
              ('FFV1', 'avi'), ('FFV1', 'mkv'), ('XVID', 'avi')]


def test_truncated_files_of_other_containers(tmp_path):
    """Crash isolation does not depend on the container: every cut file of every
    container loads as a sample or as a named failure, and the process goes on."""
    import cv2
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(16)]
    names = []
    for fourcc, ext in CONTAINERS:
        whole = str(tmp_path / f'whole_{fourcc}.{ext}')
        writer = cv2.VideoWriter(whole, cv2.VideoWriter_fourcc(*fourcc), 8, (80, 64))
        if not writer.isOpened():
            continue
        for frame in frames:
            writer.write(frame)
        writer.release()
        for fraction in (0.25, 0.5, 0.75, 0.95):
            names.append(osp.basename(truncate_file(
                whole, str(tmp_path / f'cut{int(fraction * 100)}_{fourcc}.{ext}'), fraction)))
    assert len(names) >= 24
    ann = tmp_path / 'list.txt'
    ann.write_text(''.join(f'{n} 0\n' for n in names))
    steps = [dict(type='DecordInit'),
             dict(type='SampleFrames', clip_len=4, frame_interval=3, num_clips=1, test_mode=True),
             dict(type='DecordDecode'), dict(type='Resize', scale=(32, 32), keep_ratio=False),
             dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
    dataset = DATASETS.build(dict(type='RobustVideoDataset', ann_file=str(ann),
                                  data_prefix=dict(video=str(tmp_path)), pipeline=steps,
                                  test_mode=True))
    outcomes = []
    for i in range(len(dataset)):
        meta = dataset[i]['data_samples'].metainfo
        assert meta.get(FAILED_KEY) or meta['img_shape'] == (32, 32)
        outcomes.append(meta.get(FAILED_KEY, False))
    assert dataset.num_bad_videos == sum(outcomes)
    assert 0 < sum(outcomes) < len(names)
