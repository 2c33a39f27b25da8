"""How good a trained model is: eval.py's command (evaluate.py) and its report (report.py),
reconstructions and the likelihood bounds (reconstruction.py), samples judged in a classifier's
feature space (samples.py, neighbours.py) and that classifier (classifier.py,
train_classifier.py)."""
