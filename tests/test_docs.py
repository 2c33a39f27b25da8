"""The README and docs/ stay true: every link leads to a file, every `uv run <script>.py ...`
command names a script that exists and keys its config has, and the README stays a front page."""

from __future__ import annotations

import re
import shlex

import pytest

from cvae_lightning.cli.overrides import check_overrides
from cvae_lightning.paths import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
# Each entry script and the config Hydra composes for it.
CONFIGS = {"train.py": "train", "sample.py": "sample", "eval.py": "eval", "export.py": "export",
           "app.py": "app", "train_classifier.py": "classifier"}  # fmt: skip


def commands() -> list[tuple[str, str, list[str]]]:
    """(page, script, its arguments) of every `uv run [--extra X] script.py ...` in a code
    block of the pages."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                code = line.split("  #")[0].strip()
                for part in code.split("&&"):
                    # placeholders (<date>, ~) stand for a value the reader has
                    words = shlex.split(re.sub(r"<[^>]*>", "x", part).replace("~", "HOME"))
                    scripts = [w for w in words if w.endswith(".py")]
                    if words[:2] == ["uv", "run"] and scripts:
                        args = words[words.index(scripts[0]) + 1 :]
                        found.append((page.name, scripts[0], args))
    return found


def test_every_documented_script_exists():
    missing = {
        (page, script) for page, script, _ in commands() if not (PROJECT_ROOT / script).is_file()
    }
    assert not missing


@pytest.mark.parametrize("page,script,args", [c for c in commands() if c[1] in CONFIGS],
                         ids=lambda v: v if isinstance(v, str) else " ".join(v))  # fmt: skip
def test_every_documented_override_is_a_config_key(page, script, args):
    check_overrides(CONFIGS[script], [a for a in args if "=" in a])  # raises naming the key


def test_every_link_leads_to_a_file():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if not target.startswith("http") and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert not broken


def test_the_readme_is_a_front_page_that_links_every_doc():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for doc in (PROJECT_ROOT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in readme, doc.name
