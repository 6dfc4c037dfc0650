"""What the paper measures about trained models, read from files only.

- :mod:`analysis.coco_eval`: loading and validating COCO-format ground truth and results,
  and the shared COCO segm evaluation (:func:`analysis.coco_eval.evaluate_segm`).
- :mod:`analysis.seg_errors`: the segmentation error analysis of paper Section 3
  (Eq. 1-2, Figure 2, Table 8): fFP / bFP / FN corrections and their Delta AP.
"""
