"""Data sets and transforms: COCO-format reading, image files, synthetic data, resize/augment/collate."""
