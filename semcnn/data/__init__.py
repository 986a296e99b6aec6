"""Images as tensors: session changes, the material map, batches."""
