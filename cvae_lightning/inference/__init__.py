"""A trained model in use, without Lightning: reading checkpoints (checkpoint.py) and the data
a run trained on (run_data.py), the loaded-model object that sample.py, the explorer and the
Python API share (pretrained.py) and where its z comes from (prior.py), the Hub layout
(hub_layout.py, hub.py), pictures (draw.py, captions.py, scatter.py), and the commands of
sample.py, export.py and tools/ship_model.py (sample.py, onnx.py, ship.py)."""
