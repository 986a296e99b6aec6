"""Training: the network, devices and precision, processes, checkpoints, inference."""
