"""Data: images as tensors, augmentation, session changes, the material map, batches."""
