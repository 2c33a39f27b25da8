"""Export a trained CVAE to ONNX: `uv run --extra export export.py [ckpt_path=...] [out=DIR]`.

decoder.onnx (z [+ label] -> image) and encoder.onnx (image [+ label] -> mu, logvar), with a
dynamic batch axis, checked against PyTorch with onnxruntime; see conf/export.yaml.
"""

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli.main import exit_on_user_error, prepare
from cvae_lightning.inference.onnx import export_config


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(export_config, cfg)


if __name__ == "__main__":
    prepare("export")
    main()
