"""Data sets and transforms: COCO-format reading, synthetic data, resize/augment/collate."""
