"""app.py: the page's API through gradio_client, the server's safety defaults, and one real
browser (Debian's chromium, driven by Playwright) moving a slider and drawing a stroke."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from cvae_lightning.paths import PROJECT_ROOT

from conftest import swept_shipped_copy, user_error

gradio_client = pytest.importorskip("gradio_client", reason="the app extra is not installed")
from cvae_lightning.app.page import build_page, load_explorer, serve  # noqa: E402

SHIPPED = PROJECT_ROOT / "weights" / "mnist_cvae"


def app_config(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("app", overrides=["test_images=500", *overrides])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cfg):
    """The page of cfg's checkpoint, served in this process on a free port."""
    page = build_page(load_explorer(cfg))
    port = free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return page, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def conditional_colour_app(colour_run):
    page, url = launch(app_config(f"ckpt_path={colour_run[0] / 'run'}"))
    yield gradio_client.Client(url, verbose=False)
    page.close()


def test_the_api_answers_every_panel_with_defaults(conditional_colour_app):
    client = conditional_colour_app
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate", "/decode", "/start", "/encode", "/interpolate"} <= names
    with Image.open(client.predict(api_name="/generate")) as grid:  # every input defaulted
        assert grid.mode == "RGB" and grid.width > 100
    *z, label = client.predict("test image", 3, "red", api_name="/start")
    assert len(z) == 8 and label in ("blue", "green", "red")  # the test image's own class
    decoded, where = client.predict(*z, "green", api_name="/decode")
    with Image.open(decoded) as im:
        assert im.size == (192, 192)
    assert Path(where).is_file()
    strip = client.predict("test images", 0, 1, 5, None, None, api_name="/interpolate")
    with Image.open(strip) as im:
        assert im.width > 4 * im.height


def test_a_slider_move_is_one_plain_http_call(conditional_colour_app):
    """What the page sends on a slider move, as any HTTP client can: /decode bypasses the
    queue and answers with both pictures (benchmarks/explorer_latency.py times it)."""
    import httpx

    url = conditional_colour_app.src.rstrip("/")
    answer = httpx.post(f"{url}/gradio_api/run/decode", json={"data": [0.5] * 8 + ["red"]})
    assert answer.status_code == 200
    decoded, where = answer.json()["data"]
    assert decoded["url"].endswith(".png") and where["url"].endswith(".png")


def test_the_temperature_slider_names_the_runs_own_default(tmp_path):
    """A run whose eval.py sweep chose 0.6 draws its fitted densities there, and the page's
    slider says so (its 0 means that default)."""
    import gradio as gr

    model = swept_shipped_copy(tmp_path / "model", 0.6)
    page = build_page(load_explorer(app_config(f"ckpt_path={model}")))
    labels = [b.label for b in page.blocks.values() if isinstance(b, gr.Slider)]
    assert "temperature (0: the default: 0.6 fitted, 1 for N(0, I))" in labels


def test_host_defaults_to_this_machine_and_no_share_link(monkeypatch, trained_run, cache_dir):
    cfg = app_config(f"ckpt_path={trained_run[2]}", f"data.cache_dir={cache_dir}")
    assert cfg.host == "127.0.0.1"
    seen = {}
    monkeypatch.setattr("gradio.Blocks.launch", lambda self, **kw: seen.update(kw))
    cfg.port = free_port()
    serve(cfg)
    assert seen["server_name"] == "127.0.0.1" and seen["share"] is False


def test_a_port_in_use_gets_one_line(trained_run, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = app_config(f"ckpt_path={trained_run[2]}", f"port={port}")
        code, lines = user_error(capsys, serve, cfg)
    assert code == 2 and len(lines) == 1 and f"port={port} on 127.0.0.1 is in use" in lines[0]


def test_app_script_refuses_a_bad_checkpoint_before_serving(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "app.py"), f"ckpt_path={bad}", f"port={free_port()}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: checkpoint {bad} cannot be read (UnpicklingError): it is truncated, corrupt "
        "or not a cvae-lightning checkpoint; use another one"
    ]
    assert "Running on" not in proc.stdout


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_in_a_real_browser_a_slider_moves_the_image_and_a_stroke_is_reconstructed(tmp_path):
    """The shipped model's page in headless Chromium. Screenshots of each panel go to
    tmp_path (or $EXPLORER_SCREENSHOTS, to refresh the README's)."""
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("EXPLORER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page_app, url = launch(app_config(f"ckpt_path={SHIPPED}"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Sample").wait_for()
            page.locator("img").first.wait_for(timeout=60_000)  # the first grid, on load
            page.screenshot(path=str(shots / "explorer_sample.png"))

            page.get_by_role("tab", name="Explore").click()
            decoded = page.locator("#decoded img")
            page.locator("#z0 input[type=range]").fill("1.5")
            decoded.wait_for(timeout=30_000)
            first = decoded.get_attribute("src")
            page.locator("#z1 input[type=range]").fill("-2")
            page.wait_for_function(
                "src => document.querySelector('#decoded img').src !== src", arg=first,
                timeout=30_000,
            )  # fmt: skip

            page.locator("#sketchpad").get_by_role("button", name="Brush").first.click()
            canvas = page.locator("#sketchpad canvas").first
            box = canvas.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
            page.mouse.move(x, y)
            page.mouse.down()
            for i in range(1, 21):  # a vertical stroke: a "1"
                page.mouse.move(x, y + i * box["height"] * 0.03)
            page.mouse.up()
            page.locator("#reconstruction img").wait_for(timeout=30_000)
            page.screenshot(path=str(shots / "explorer_explore.png"))

            page.get_by_role("tab", name="Interpolate").click()
            page.get_by_role("button", name="Interpolate").click()
            page.locator("#strip img").wait_for(timeout=30_000)
            page.screenshot(path=str(shots / "explorer_interpolate.png"))
            browser.close()
    finally:
        page_app.close()
    for name in ("sample", "explore", "interpolate"):
        assert (shots / f"explorer_{name}.png").stat().st_size > 10_000
