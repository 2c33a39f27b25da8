"""The explorer in the browser: `uv run --extra app app.py [ckpt_path=...] [port=7860]`."""

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli.main import exit_on_user_error, prepare


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg: DictConfig) -> None:
    from cvae_lightning.app.page import serve  # Gradio: only when the page is served

    exit_on_user_error(serve, cfg)


if __name__ == "__main__":
    prepare("app")
    main()
