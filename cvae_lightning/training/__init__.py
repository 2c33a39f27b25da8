"""Training with Lightning (the only package that imports it): train.py's command (train.py),
the LightningModule and DataModule, callbacks, safe checkpoints, the loggers, and what keeps
the GPU path free of host syncs (epoch_sums.py, cuda_graph.py)."""
