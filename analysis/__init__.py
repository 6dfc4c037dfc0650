"""What the paper measures about trained models, read from files only.

- :mod:`analysis.coco_format`: loading and validating COCO-format ground truth and results
  (:mod:`analysis.rle`: RLE areas and compressed strings decoded without masks).
- :mod:`analysis.coco_eval`: the shared COCO segm evaluation, stats and per-class AP
  (:func:`analysis.coco_eval.evaluate_segm`), and box AP.
- :mod:`analysis.seg_errors`: the segmentation error analysis of paper Section 3
  (Eq. 1-2, Figure 2, Table 8): fFP / bFP / FN corrections and their Delta AP.
- :mod:`analysis.cityscapes_eval`: Cityscapes-style AP through cityscapesScripts (Table 5).
- :mod:`analysis.subset`: results restricted to a subset's images and categories (COCO-OCC, Table 6; novel classes).
- :mod:`analysis.cost`: training time per iteration and peak memory (Table 9).
- :mod:`analysis.tsne`: t-SNE of mask-head features and the fg/bg silhouette (Figure 4).
"""
