# Partially-supervised COCO 2017 (ContrastMask's data and optimiser, as the official configs):
# instances flagged is_novel (CocoPartialDataset), multi-scale training (1333, 640-800), flip
# 0.5, testing at (1333, 800); 8 GPUs x 2 images, SGD lr 0.02, momentum 0.9, wd 1e-4.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPartialAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# Paths and classes: train.py's --train-data / predict.py's --val-data (COCO 2017 here).
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoPartialDataset',
        # The partially-supervised split: 'voc' = the 20 VOC classes are novel (nonvoc -> voc,
        # the official configs' setting); 'nonvoc' = voc -> nonvoc (dcl_data.voc_split).
        novel='voc',
        data_root='datasets/coco/',
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root='datasets/coco/',
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline))
# Predictions of every class are written; the workflow scores the novel ones
# (dcl_data.coco_subsets novel + analysis.subset: COCOeval with the novel catIds).
test_evaluator = dict(type='CocoResultsWriter', outfile='predictions_val.json', category_ids=[])
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
