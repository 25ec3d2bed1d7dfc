"""Every valid video decodes: OpenCV takes over where decord 0.6.0 fails.

Videos are written here with OpenCV (odd sizes, extreme aspect ratios, 1-3
frames, several fourccs and frame rates) plus the shared real mp4s. Where decord
works its frames must equal OpenCV's (they are bit-identical on these files).
"""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmaction.datasets.transforms import DecordInit
from mmaction.registry import DATASETS, TRANSFORMS

from conftest import shared_path
from mmflux.datasets.robust_dataset import FAILED_KEY, RobustCompose
from mmflux.datasets.video_fallback import (DECODER_FALLBACK_KEY, OpenCVVideo,
                                            frames_problem)

# fourcc -> container; mp4v (the repo's own writer) and MJPG must exist everywhere
FOURCCS = {'mp4v': 'mp4', 'MJPG': 'avi', 'XVID': 'avi', 'FFV1': 'mkv', 'VP90': 'webm',
           'HFYU': 'avi'}


def write(path, width, height, frames=5, fourcc='mp4v', fps=25.0, seed=0):
    """A video of noise with a moving bright square; None if OpenCV lacks the codec.

    Widths below 4 are not written: OpenCV's writer aborts the process on them.
    """
    assert width >= 4
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        return None
    rng = np.random.default_rng(seed)
    side = max(1, min(width, height) // 3)
    for t in range(frames):
        img = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        y, x = (t * 2) % max(1, height - side), (t * 3) % max(1, width - side)
        img[y:y + side, x:x + side] = (255, 200, 40)
        writer.write(img)
    writer.release()
    return str(path)


def opencv_frames(path):
    """Every frame OpenCV reads, RGB."""
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    return frames


def decord_pipeline(mode='accurate', clip_len=4):
    return RobustCompose([dict(type='DecordInit'),
                          dict(type='UniformSample', clip_len=clip_len, num_clips=1,
                               test_mode=True),
                          dict(type='DecordDecode', mode=mode)])


def decode(path, mode='accurate', clip_len=4):
    pipeline = decord_pipeline(mode, clip_len)
    out = pipeline(dict(filename=path, start_index=0, modality='RGB'))
    return out, pipeline.fallback.last


def decord_works(path, inds, mode):
    """decord alone: True if it returns (H, W, 3) uint8 frames for ``inds``."""
    import decord
    try:
        reader = decord.VideoReader(path, num_threads=1)
        if mode == 'accurate':
            imgs = list(reader.get_batch(list(inds)).asnumpy())
        else:
            imgs = []
            for i in inds:
                reader.seek(int(i))
                imgs.append(reader.next().asnumpy())
    except Exception:  # noqa: BLE001
        return False
    return frames_problem(imgs, len(inds)) is None


# ------------------------------------------------------------------ sizes and codecs
@pytest.mark.parametrize('mode', ['accurate', 'efficient'])
@pytest.mark.parametrize('size', [(12, 24), (24, 7), (48, 30), (33, 17), (97, 61), (50, 24),
                                  (641, 4), (4, 480), (8, 8)])
def test_odd_sizes_decode_and_match_opencv(tmp_path, size, mode):
    width, height = size
    path = write(tmp_path / f'v_{width}x{height}.mp4', width, height)
    ref = opencv_frames(path)
    out, fallback = decode(path, mode)
    inds = out['frame_inds']
    assert out['total_frames'] == len(ref) == 5
    assert len(out['imgs']) == len(inds)
    for i, img in zip(inds, out['imgs']):
        assert img.dtype == np.uint8 and img.shape == ref[0].shape
        np.testing.assert_array_equal(img, ref[i])
    # OpenCV took over exactly where decord alone fails
    assert (fallback is not None) == (not decord_works(path, inds, mode)), fallback


def test_decord_misdecoded_width_is_a_fallback_not_a_failure(tmp_path):
    """12-pixel-wide frames: decord 0.6.0 raises (accurate) / returns 8 channels."""
    path = write(tmp_path / 'w12.mp4', 12, 24)
    for mode in ('accurate', 'efficient'):
        if decord_works(path, [0, 1, 2], mode):
            pytest.skip('this decord decodes 12-pixel-wide frames')
        out, fallback = decode(path, mode)
        assert 'decoded by OpenCV' in fallback and 'DecordDecode' in fallback
        assert {img.shape for img in out['imgs']} == {(24, 12, 3)}


@pytest.mark.parametrize('fourcc', sorted(FOURCCS))
@pytest.mark.parametrize('size', [(97, 61), (16, 24), (130, 70)])
def test_fourccs(tmp_path, fourcc, size):
    path = write(tmp_path / f'v.{FOURCCS[fourcc]}', *size, fourcc=fourcc)
    if path is None:
        assert fourcc not in ('mp4v', 'MJPG'), f'OpenCV cannot write {fourcc}'
        pytest.skip(f'this OpenCV build cannot write {fourcc}')
    ref = opencv_frames(path)
    out, _ = decode(path)
    assert out['total_frames'] == len(ref)
    for i, img in zip(out['frame_inds'], out['imgs']):
        np.testing.assert_array_equal(img, ref[i])


@pytest.mark.parametrize('frames', [1, 2, 3])
@pytest.mark.parametrize('size', [(12, 24), (97, 61)])
def test_one_to_three_frames(tmp_path, frames, size):
    path = write(tmp_path / 'short.mp4', *size, frames=frames)
    ref = opencv_frames(path)
    assert len(ref) == frames
    out, _ = decode(path, clip_len=6)
    assert out['total_frames'] == frames and len(out['imgs']) == 6
    for i, img in zip(out['frame_inds'], out['imgs']):
        np.testing.assert_array_equal(img, ref[i])


@pytest.mark.parametrize('fps', [7.5, 120.0])
def test_unusual_frame_rates(tmp_path, fps):
    path = write(tmp_path / 'fps.mp4', 12, 24, frames=4, fps=fps)  # through the fallback
    out, fallback = decode(path)
    assert out['avg_fps'] == pytest.approx(fps, rel=1e-3)
    assert len(out['imgs']) == 4
    plain = write(tmp_path / 'fps_plain.mp4', 50, 24, frames=4, fps=fps)  # decord
    assert decode(plain)[0]['avg_fps'] == pytest.approx(fps, rel=1e-3)


@pytest.mark.parametrize('name', ['test.mp4', 'demo.mp4'])
def test_shared_videos_decoders_agree(name):
    path = shared_path('data', name)
    import decord
    reader = decord.VideoReader(path, num_threads=1)
    inds = [0, len(reader) // 2, len(reader) - 1]
    video = OpenCVVideo(path)
    assert len(video) == len(reader) and video.fps == pytest.approx(reader.get_avg_fps())
    np.testing.assert_array_equal(np.stack(video.frames(inds)), reader.get_batch(inds).asnumpy())
    out, fallback = decode(path)
    assert fallback is None  # decord handles these itself


# ------------------------------------------------------------------ frame counts
def test_frame_count_is_what_can_be_read(tmp_path):
    """A truncated AVI's header still reports all frames; count what can be read."""
    full = write(tmp_path / 'full.avi', 64, 48, frames=20, fourcc='MJPG')
    data = open(full, 'rb').read()
    cut = str(tmp_path / 'cut.avi')
    open(cut, 'wb').write(data[:int(len(data) * 0.6)])
    ref = opencv_frames(cut)
    assert 0 < len(ref) < 20
    video = OpenCVVideo(cut)
    assert video.reported_frames == 20  # the header
    assert len(video) == len(ref)  # the readable frames
    n = len(ref)
    frames = video.frames([0, n - 1, n, 19])  # the last two are past the end
    assert video.clamped == 2
    for img, i in zip(frames, [0, n - 1, n - 1, n - 1]):
        np.testing.assert_array_equal(img, ref[i])
    # (decord 0.6.0 is not run on this file: it segfaults decoding it)


def test_indices_past_the_readable_end_are_logged(tmp_path, monkeypatch):
    # decord reports more frames than the file has: the fallback takes the last one
    path = write(tmp_path / 'w12.mp4', 12, 24, frames=3)
    pipeline = RobustCompose([dict(type='DecordInit'), dict(type='DecordDecode')])
    results = pipeline.run(pipeline.transforms[:1], dict(filename=path, start_index=0,
                                                          modality='RGB'))
    results['frame_inds'] = np.array([0, 2, 5, 9])
    if decord_works(path, [0], 'accurate'):
        pytest.skip('this decord decodes 12-pixel-wide frames')
    out = pipeline.run(pipeline.transforms[1:], results)
    ref = opencv_frames(path)
    for img, i in zip(out['imgs'], [0, 2, 2, 2]):
        np.testing.assert_array_equal(img, ref[i])
    assert '2 of 4 frame indices were past the 3 readable frames' in pipeline.fallback.last


# ------------------------------------------------------------------ init fallback
@TRANSFORMS.register_module(force=True)
class FailingDecordInit(DecordInit):
    """decord that cannot open anything (as for a codec its FFmpeg lacks)."""

    def transform(self, results):
        raise RuntimeError('ERROR cannot find video stream with wanted index: -1')


def test_file_decord_cannot_open_is_read_by_opencv(tmp_path):
    path = write(tmp_path / 'v.mp4', 97, 61, frames=6)
    pipeline = RobustCompose([dict(type='FailingDecordInit'),
                              dict(type='UniformSample', clip_len=4, num_clips=1, test_mode=True),
                              dict(type='DecordDecode')])
    out = pipeline(dict(filename=path, start_index=0, modality='RGB'))
    ref = opencv_frames(path)
    assert out['total_frames'] == 6
    for i, img in zip(out['frame_inds'], out['imgs']):
        np.testing.assert_array_equal(img, ref[i])
    assert pipeline.fallback.last.startswith('DecordInit failed (RuntimeError: ERROR cannot')
    assert pipeline.fallback.num_fallbacks == 1


def test_a_file_no_decoder_reads_is_still_broken(tmp_path):
    path = str(tmp_path / 'noise.mp4')
    open(path, 'wb').write(np.random.default_rng(0).integers(0, 256, 4096,
                                                            dtype=np.uint8).tobytes())
    with pytest.raises(Exception) as info:
        decode(path)
    notes = ' '.join(getattr(info.value, '__notes__', []))
    assert 'the OpenCV fallback failed too' in notes


# ------------------------------------------------------------------ dataset level
def test_test_set_of_unusual_videos_is_evaluated_not_excluded(tmp_path, log_messages):
    specs = [('w12', 12, 24, 5, 'mp4v', 'mp4'), ('w48', 48, 30, 3, 'mp4v', 'mp4'),
             ('wide', 641, 4, 4, 'MJPG', 'avi'), ('tall', 4, 480, 2, 'mp4v', 'mp4'),
             ('one', 16, 16, 1, 'FFV1', 'mkv'), ('plain', 97, 61, 8, 'mp4v', 'mp4')]
    lines = []
    for label, (name, w, h, n, fourcc, ext) in enumerate(specs):
        assert write(tmp_path / f'{name}.{ext}', w, h, frames=n, fourcc=fourcc), fourcc
        lines.append(f'{name}.{ext} {label}')
    ann = tmp_path / 'ann.txt'
    ann.write_text('\n'.join(lines) + '\n')
    pipeline = [dict(type='DecordInit'),
                dict(type='UniformSample', clip_len=4, num_clips=1, test_mode=True),
                dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 32)),
                dict(type='CenterCrop', crop_size=32),
                dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
    dataset = DATASETS.build(dict(type='RobustVideoDataset', ann_file=str(ann),
                                  data_prefix=dict(video=str(tmp_path)), pipeline=pipeline,
                                  test_mode=True))
    fallbacks = {}
    for i in range(len(dataset)):
        out = dataset[i]
        meta = out['data_samples'].metainfo
        assert not meta.get(FAILED_KEY), meta
        assert out['inputs'].shape == (1, 3, 4, 32, 32)
        fallbacks[osp.basename(dataset.get_data_info(i)['filename'])] = meta.get(
            DECODER_FALLBACK_KEY)
    assert dataset.num_bad_videos == 0
    assert fallbacks['w12.mp4'] and fallbacks['w48.mp4'] and fallbacks['tall.mp4']
    assert fallbacks['plain.mp4'] is None
    assert dataset.num_decoder_fallbacks == sum(1 for v in fallbacks.values() if v)
    logged = [m for m in log_messages if m.startswith('decoder fallback ')]
    assert any('w12.mp4' in m for m in logged)
