"""Generate from a trained CVAE: `uv run sample.py ckpt_path=... n=64 out=samples.png`.

mode=samples|interpolate|traverse|manifold; see conf/sample.yaml and README.md.
"""

import logging
import sys

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli import exit_on_user_error
from cvae_lightning.overrides import check_overrides
from cvae_lightning.runs import register_resolvers
from cvae_lightning.sampling import render


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    out = exit_on_user_error(render, cfg)
    logging.getLogger("sample").info(f"wrote {out.resolve()}")


if __name__ == "__main__":
    register_resolvers()
    exit_on_user_error(check_overrides, "sample", sys.argv[1:])  # a misspelt key: one line
    main()
