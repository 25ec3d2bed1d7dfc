# Kinetics-400 in MMAction2's VideoDataset format (``path label`` lists).
# Evaluation protocol of the paper: 8 frames spread over the whole video
# (segment sampling), short side 224, 4 clips x 3 crops, softmax-averaged.
# Robust: a bad video is reported and excluded from the metrics, never replaced.
dataset_type = 'RobustVideoDataset'
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = 'data/kinetics400/kinetics400_val_list_videos.txt'
file_client_args = dict(io_backend='disk')

# test grid (frames x side); the budget lives in model.test_cfg.token_budget
test_frames = 8
test_side = 224

# Training: every batch draws frames x side from
# 6..24 frames and 112..336 px inside a 2048..6144-token window; whole-video
# segment sampling; clip-consistent RandAugment m7-n4; random resized crop to the
# drawn side; flip; each video decoded once and augmented twice.
flux_frames = (6, 26, 2)
flux_sides = (112, 364, 28)
flux_token_window = (2048, 6144)
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='FluxUniformSample', clip_len=8),
    dict(type='DecordDecode'),
    dict(type='ClipRandAugment', config_str='rand-m7-n4-mstd0.5-inc1'),
    dict(type='FluxRandomResizedCrop', size=224),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='FluxBatchSampler', frames=flux_frames, sides=flux_sides,
                       token_window=flux_token_window),
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(
        type='FluxVideoDataset',
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline,
        num_repeats=2))

val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='FluxUniformSample', clip_len=test_frames, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, test_side)),
    dict(type='CenterCrop', crop_size=test_side),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='FluxUniformSample', clip_len=test_frames, num_clips=4, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, test_side)),
    dict(type='ThreeCrop', crop_size=test_side),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

# accuracy over the videos actually evaluated; failures are named in the log
val_evaluator = dict(type='RobustAccMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
