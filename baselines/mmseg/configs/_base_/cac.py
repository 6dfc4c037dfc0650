# CAC's settings, one home for every config that adds it (variables the configs merge with
# {{_base_.cac_fcn_head}} / {{_base_.cac_hooks}}). Official values (shared/reference/
# contrastmask-cac.md B.5): in a name like fcn_hr48_..._lr0.01_0.4_0.1_1.5, 0.4 is CACLoss's
# loss_weight (OCRNet: 0.6), 0.1 its temperature and 1.5 the weight branch's CE factor;
# max_sample 1024, threshold 100, base_temperature 0.07 and sorted (boundary) anchor picking are
# dcl_core.cac.CACLoss's defaults. The loss weight is held at 0 for iterations 0-5000.
cac_loss = dict(type='CACLoss', loss_weight=0.4, temperature=0.1)
cac_fcn_head = dict(type='CACFCNHead', proj_channels=256, weight_branch_factor=1.5,
                    loss_cac=cac_loss)
cac_loss_ocr = dict(cac_loss, loss_weight=0.6)
cac_hooks = [dict(type='CACWarmupHook', start_iter=5000)]
