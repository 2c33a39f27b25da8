"""Generate from a trained CVAE: `uv run sample.py ckpt_path=... n=64 out=samples.png`.

mode=samples|interpolate|traverse|manifold; see conf/sample.yaml and docs/densities.md.
"""

import logging

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli.main import exit_on_user_error, prepare
from cvae_lightning.inference.sample import render


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    out = exit_on_user_error(render, cfg)
    logging.getLogger("sample").info(f"wrote {out.resolve()}")


if __name__ == "__main__":
    prepare("sample")
    main()
