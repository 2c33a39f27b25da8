"""The house's plan, as a newcomer reads it from `ls`: each layer of the package imports only
the layers before it, Lightning, Gradio and Hydra each stay in their own corner, nothing in the
package reads conf/, and no module grows past one idea's size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cvae_lightning.paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "cvae_lightning"
# Layer by layer, each may import only those before it (and its own).
LAYERS = [
    {"errors", "files", "paths", "images"},  # shared basics
    {"vae", "data"},  # the network; where images come from
    {"densities"},  # where z comes from
    {"inference"},  # a trained model in use
    {"evaluation"},  # how good it is
    {"training", "app"},  # Lightning; the browser
    {"cli"},  # Hydra glue for the entry scripts
]
# The commands that turn a composed config into work may read it with Hydra too.
COMMANDS = {
    "training/train.py", "inference/sample.py", "evaluation/train_classifier.py", "app/page.py",
}  # fmt: skip


def modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE
    )


def unit(path: Path) -> str:
    """The layer name of a module: its subpackage, or the basic module's own name."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "cvae_lightning":
                found |= {f"cvae_lightning.{a.name}" for a in node.names}
    return found


def test_every_module_belongs_to_a_layer():
    assert {unit(p) for p in modules()} <= set().union(*LAYERS)


def test_each_layer_imports_only_the_layers_before_it():
    wrong = []
    for path in modules():
        own = layer(unit(path))
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "cvae_lightning" and len(parts) > 1 and layer(parts[1]) > own:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not wrong


@pytest.mark.parametrize(
    "library,allowed",
    [
        ("lightning", lambda rel: rel.startswith("training/")),
        ("gradio", lambda rel: rel.startswith("app/")),
        ("hydra", lambda rel: rel.startswith("cli/") or rel in COMMANDS),
        ("omegaconf", lambda rel: rel.startswith("cli/") or rel in COMMANDS),
    ],
)
def test_each_library_stays_in_its_corner(library, allowed):
    users = {
        str(p.relative_to(PACKAGE)) for p in modules()
        if any(n.split(".")[0] == library for n in imports(p))
    }  # fmt: skip
    assert users and all(allowed(rel) for rel in users), sorted(users)


def test_nothing_in_the_package_reads_a_file_under_conf():
    """Library code takes its values as arguments; only the Hydra glue opens conf/."""
    readers = [
        str(p.relative_to(PACKAGE)) for p in modules()
        if unit(p) != "cli" and any(
            isinstance(n, ast.Constant) and n.value in ("conf", "conf/")
            for n in ast.walk(ast.parse(p.read_text()))
        )
    ]  # fmt: skip
    assert not readers


def test_the_top_level_holds_subpackages_and_a_few_basics():
    top = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len([name for name in top if not (PACKAGE / name).is_dir()]) <= 8


def test_no_module_grows_past_one_idea():
    long = {
        str(p.relative_to(PACKAGE)): n for p in modules()
        if (n := len(p.read_text().splitlines())) > 250 and p.name != "cache.py"
    }  # fmt: skip
    assert not long


def imported_by(code: str) -> set[str]:
    """The heavy libraries a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, check=True)  # fmt: skip
    return set(out.stdout.split())


HEAVY = ("lightning", "gradio", "hydra", "omegaconf")


def test_sampling_and_evaluating_start_without_lightning():
    code = "import cvae_lightning.inference.sample, cvae_lightning.evaluation.evaluate"
    assert imported_by(code) == {"hydra", "omegaconf"}  # the commands read their config


def test_the_python_api_imports_neither_lightning_nor_hydra():
    assert imported_by("from cvae_lightning import load_pretrained\nload_pretrained") == set()
