"""Evaluate a checkpoint on the test split: `uv run eval.py ckpt_path=<run dir or .ckpt>`."""

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli.main import exit_on_user_error, prepare
from cvae_lightning.evaluation.evaluate import evaluate_config


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(evaluate_config, cfg)


if __name__ == "__main__":
    prepare("eval")
    main()
