# FluxViT-B/14 with the multi-budget head (heads 0/1/2 <-> 3072/2048/1024 tokens):
# the S/14 settings with the B width.
_base_ = ['fluxvit_s14.py']

model = dict(backbone=dict(arch='base'), cls_head=dict(in_channels=768))
