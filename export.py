"""Export a trained CVAE to ONNX: `uv run --extra export export.py [ckpt_path=...] [out=DIR]`.

decoder.onnx (z [+ label] -> image) and encoder.onnx (image [+ label] -> mu, logvar), with a
dynamic batch axis, checked against PyTorch with onnxruntime; see conf/export.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli import exit_on_user_error
from cvae_lightning.onnx_export import export
from cvae_lightning.overrides import check_overrides
from cvae_lightning.runs import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(
        export, cfg.ckpt_path, cfg.out, cfg.opset, cfg.pt2, tuple(cfg.batches), cfg.tolerance
    )


if __name__ == "__main__":
    register_resolvers()
    exit_on_user_error(check_overrides, "export", sys.argv[1:])  # a misspelt key: one line
    main()
