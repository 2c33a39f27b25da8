"""Evaluate a checkpoint on the test split: `uv run eval.py ckpt_path=<run dir or .ckpt>`."""

import sys

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli import exit_on_user_error
from cvae_lightning.evaluation import evaluate_config
from cvae_lightning.overrides import check_overrides
from cvae_lightning.runs import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(evaluate_config, cfg)


if __name__ == "__main__":
    register_resolvers()
    exit_on_user_error(check_overrides, "eval", sys.argv[1:])  # a misspelt key: one line
    main()
