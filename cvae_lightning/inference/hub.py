"""The Hugging Face Hub: downloading a saved model by its id, uploading one. huggingface_hub is
the `hub` extra's, imported only here and only when used."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from cvae_lightning.errors import CheckpointError, ConfigError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_api(token: str | None = None):
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ConfigError(
            "the Hugging Face Hub needs the huggingface_hub package: add the 'hub' extra "
            "(`uv sync --extra hub`)"
        ) from None
    return HfApi(token=token)


def is_hub_id(source: str | Path) -> bool:
    """A `user/name` that is not a local path."""
    return not Path(source).expanduser().exists() and bool(HUB_ID.match(str(source)))


def download(repo_id: str, revision: str | None = None) -> Path:
    """A Hub model's folder in the local Hugging Face cache (downloaded if not there yet;
    with HF_HUB_OFFLINE=1 only the cache is read)."""
    hub_api()  # the extra's check
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except Exception as e:  # no network, no such repo, no access: the same fix for the user
        raise CheckpointError(
            f"{repo_id} cannot be loaded from the Hugging Face Hub ({type(e).__name__}): check "
            "the id, your network and access (`uv run huggingface-cli login`), or pass a local "
            "folder"
        ) from None


def upload(
    save: Callable[[Path], object], repo_id: str, *, private: bool | None = None,
    token: str | None = None, commit_message: str = "Upload cvae-lightning model",
) -> str:  # fmt: skip
    """save(folder) into a temporary folder, then upload it as `repo_id` (created if needed);
    returns the commit's URL."""
    api = hub_api(token)
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp))
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
