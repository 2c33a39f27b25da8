"""Train the CVAE: `uv run train.py [key=value ...]` (see conf/ and README.md)."""

import sys

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli import exit_on_user_error
from cvae_lightning.overrides import check_overrides
from cvae_lightning.runs import register_resolvers, resume_overrides
from cvae_lightning.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = exit_on_user_error(train, cfg)
    # Sweepers (Optuna, ...) optimise what main returns.
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    register_resolvers()
    exit_on_user_error(check_overrides, "train", sys.argv[1:])  # a misspelt key: one line
    sys.argv[1:] = exit_on_user_error(resume_overrides, sys.argv[1:])  # ckpt_path=last
    main()
