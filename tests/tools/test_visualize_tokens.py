"""The token picture: each selector keeps the budget's count, and in the PNG exactly the
dropped tokens' patches are dimmed."""
import cv2
import numpy as np
import torch
from mmengine.config import Config

from mmaction.registry import MODELS

from conftest import TINY_RECIPE, load_tool

SELECTORS = ['GroupDynamicSelector', 'RandomSelector']


def write_green_video(path, num_frames=16, side=56):
    """Bright green waves moving over the frames (green 180-255, red = blue = 0): a kept
    patch is shown bright green, a dimmed one (0.2 x + 25.5) dark green (61-77), and
    nothing else in the figure is green."""
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 8, (side, side))
    for t in range(num_frames):
        green = 180 + 75 * (0.5 + 0.5 * np.sin(xx / 5 + yy / 7 + 0.8 * t) *
                            np.cos(yy / 9 - 0.5 * t))
        frame = np.zeros((side, side, 3), np.uint8)
        frame[..., 1] = green.round().astype(np.uint8)  # BGR: channel 1 is green
        writer.write(frame)
    writer.release()
    return str(path)


def runs(values):
    """(start, stop) of the runs of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], values.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def masks_in_png(path, frames, rows, cols):
    """selector row -> (frames, rows, cols) bool: a patch is kept where the PNG shows it
    bright green at its centre, dropped where dark green."""
    import matplotlib.image as mpimg
    rgb = (mpimg.imread(str(path))[..., :3] * 255).astype(np.int16)
    green = rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2]) > 20
    row_runs = [r for r in runs(green.any(1)) if r[1] - r[0] > 20]
    col_runs = [c for c in runs(green.any(0)) if c[1] - c[0] > 20]
    assert len(col_runs) == frames, col_runs
    shown = []
    for y0, y1 in row_runs:
        mask = np.zeros((frames, rows, cols), bool)
        for t, (x0, x1) in enumerate(col_runs):
            for i in range(rows):
                for j in range(cols):
                    y = int(y0 + (i + 0.5) * (y1 - y0) / rows)
                    x = int(x0 + (j + 0.5) * (x1 - x0) / cols)
                    value = np.median(rgb[y - 1:y + 2, x - 1:x + 2, 1])
                    assert value > 150 or 50 < value < 90, (t, i, j, value)
                    mask[t, i, j] = value > 150
        shown.append(mask)
    return shown


def test_png_dims_exactly_the_dropped_tokens(tmp_path, monkeypatch):
    tool = load_tool('visualize_tokens')
    video = write_green_video(tmp_path / 'green.mp4')
    torch.manual_seed(0)
    checkpoint = tmp_path / 'random.pth'
    torch.save(dict(state_dict=MODELS.build(Config.fromfile(TINY_RECIPE).model).state_dict()),
               checkpoint)
    seen = {}
    kept_masks = tool.kept_masks

    def recorded(model, batch, budget, selectors, seed):
        seen.update(model=model, batch=batch)
        seen['masks'] = kept_masks(model, batch, budget, selectors, seed)
        return seen['masks']

    monkeypatch.setattr(tool, 'kept_masks', recorded)
    out = tmp_path / 'tokens.png'
    tool.main([video, TINY_RECIPE, str(checkpoint), '--budget', '32', '--grid', '8', '56',
               '--out', str(out)])
    masks = seen['masks']
    assert list(masks) == SELECTORS
    # the recipe's 7 px x 2-frame patches: 8 frames x 56 px are 4 token frames of 8 x 8
    for mask in masks.values():
        assert mask.shape == (4, 8, 8) and mask.sum() == 32
        assert mask.reshape(2, -1).sum(1).tolist() == [16, 16]  # 2 groups of 2 token frames
    assert not np.array_equal(masks['GroupDynamicSelector'], masks['RandomSelector'])
    # the masks are the backbone's own kept indices on the view shown
    model = seen['model']
    inputs = model.data_preprocessor(seen['batch'], False)['inputs']
    x = inputs.reshape((-1, ) + inputs.shape[2:])[:1]
    for name in SELECTORS:
        model.backbone.selector = MODELS.build(dict(type=name))
        with torch.no_grad():
            kept = model.backbone.forward_features(x, 32).kept[0]
        assert np.flatnonzero(masks[name]).tolist() == kept.tolist(), name
    # and the PNG shows exactly those patches bright, every other one dimmed
    shown = masks_in_png(out, 4, 8, 8)
    assert len(shown) == len(SELECTORS)
    for mask, name in zip(shown, SELECTORS):
        np.testing.assert_array_equal(mask, masks[name], err_msg=name)
