"""Training: the data pool, augmentation, fine-tuning and export of the embedded model."""
