"""app.py's command: the explorer's panels (explorer.py) as a Gradio page on 127.0.0.1.

Every panel has an API name (/generate, /decode, /start, /encode, /interpolate), so the page
and `gradio_client` call the same functions. Images from the browser arrive as arrays; no file
path the browser sends is ever read.
"""

from __future__ import annotations

import logging
import os
import random
import socket

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves this machine
import gradio as gr  # noqa: E402
import numpy as np
from omegaconf import DictConfig

from cvae_lightning.app.explorer import Explorer
from cvae_lightning.densities.base import STANDARD
from cvae_lightning.errors import ConfigError
from cvae_lightning.inference.run_data import DataSource
from cvae_lightning.inference.sample import build_fitters

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
ONE_ROW_PER_CLASS = "one row per class"
START_KINDS = ("zero", "random draw", "test image")


def load_explorer(cfg: DictConfig) -> Explorer:
    e = Explorer.load(
        cfg.ckpt_path, DataSource.of(cfg.data), build_fitters(cfg.density),
        auto_fit=cfg.auto_fit, temperature=cfg.density.temperature,
        test_images=cfg.test_images, seed=cfg.seed, device=cfg.get("device", "auto"),
    )  # fmt: skip
    e.where(e.start("zero"))  # draw the 2-D view now, not on the first slider move
    return e


def drawing(value) -> np.ndarray | None:
    """The picture in a Sketchpad's value (its composite), or an uploaded array."""
    if isinstance(value, dict):
        value = value.get("composite")
    if value is None or not np.asarray(value).size:
        return None
    a = np.asarray(value)
    if a.ndim == 3 and a.shape[2] == 4 and not a[:, :, 3].any():
        return None  # an empty canvas
    return a


def build_page(e: Explorer) -> gr.Blocks:
    """The page: Sample, Explore (sliders, start, draw or upload, where codes lie) and
    Interpolate."""
    conditional = bool(e.model.num_classes)
    densities = ["auto", *[n for n in e.densities if n != STANDARD], STANDARD]
    with gr.Blocks(title="cvae-lightning explorer") as page:
        gr.Markdown(
            f"### cvae-lightning explorer\n`{e.source}`: latent size {e.model.latent}, "
            f"{e.model.channels} channel(s), {len(e.classes) or 'no'} classes"
            f"{' (conditional)' if conditional else ''}; best density: **{e.best}**"
        )
        with gr.Tab("Sample"), gr.Row():
            with gr.Column(scale=1):
                density = gr.Dropdown(densities, value="auto", label="density (z from)")
                temperature = gr.Slider(
                    0, 2, value=0, step=0.05,
                    label=f"temperature (0: the default: {e.temperature:g} fitted, 1 for N(0, I))",
                )  # fmt: skip
                seed = gr.Number(0, precision=0, label="seed")
                count = gr.Slider(1, 256, value=16, step=1, label="count")
                label = gr.Dropdown(
                    [ONE_ROW_PER_CLASS, *e.classes], value=ONE_ROW_PER_CLASS,
                    label="class", visible=conditional,
                )  # fmt: skip
                draw = gr.Button("Draw", variant="primary")
            grid = gr.Image(label="samples", type="numpy", interactive=False, scale=2)

        def generate(density="auto", temperature=0.0, seed=0, count=16, label=None):
            label = None if label in (None, "", ONE_ROW_PER_CLASS) else label
            t = float(temperature) if temperature else None
            return e.sample(density, t, int(seed or 0), int(count or 16), label)

        draw.click(generate, [density, temperature, seed, count, label], grid, api_name="generate")
        page.load(generate, None, grid, api_visibility="private")

        with gr.Tab("Explore"), gr.Row():
            with gr.Column(scale=2):
                sliders = [
                    gr.Slider(lo, hi, value=0.0, step=0.01, label=f"z[{d}]", elem_id=f"z{d}")
                    for d, (lo, hi) in enumerate(e.ranges)
                ]
                z_label = gr.Dropdown(
                    e.classes, value=e.classes[0] if e.classes else None,
                    label="class (the style, z, stays)", visible=conditional,
                )  # fmt: skip
                with gr.Row():
                    kind = gr.Radio(START_KINDS, value="zero", label="start from")
                    index = gr.Number(0, precision=0, label="test image / seed")
                start = gr.Button("Start")
            with gr.Column(scale=2):
                # PNG: quicker to encode than WebP for these pictures, sent on every move.
                decoded = gr.Image(label="decoded", type="numpy", interactive=False,
                                   elem_id="decoded", format="png")  # fmt: skip
                where = gr.Image(label="where codes lie: test images, + the current code",
                                 type="numpy", interactive=False, format="png")  # fmt: skip
            with gr.Column(scale=2):
                pad = gr.Sketchpad(
                    label="draw (pick the brush first)", type="numpy", image_mode="RGBA",
                    canvas_size=(280, 280),
                    brush=gr.Brush(colors=["#000000"], default_size=20, color_mode="fixed"),
                    elem_id="sketchpad", layers=False,
                )  # fmt: skip
                upload = gr.Image(label="or upload", type="numpy", sources=["upload"],
                                  image_mode="RGBA")  # fmt: skip
                with gr.Row():
                    seen = gr.Image(label="as the model sees it", type="numpy",
                                    interactive=False)  # fmt: skip
                    recon = gr.Image(label="reconstruction", type="numpy", interactive=False,
                                     elem_id="reconstruction")  # fmt: skip

        def decode(*values):
            *z, label = values
            return e.decode(z, label), e.where(z)

        gr.on(
            [s.change for s in sliders] + [z_label.change], decode, [*sliders, z_label],
            [decoded, where], api_name="decode", show_progress="hidden",
            trigger_mode="always_last", queue=False,
        )  # fmt: skip
        page.load(decode, [*sliders, z_label], [decoded, where], api_visibility="private")

        def start_from(kind="zero", index=0, label=None):
            how = {"random draw": "random", "test image": "test"}.get(kind, "zero")
            z = e.start(how, int(index or 0), int(index or 0))
            if how == "test" and e.classes and conditional:
                label = e.test_label(index)
            return [*z, label]

        start.click(start_from, [kind, index, z_label], [*sliders, z_label], api_name="start")

        def encode(picture, label=None):
            image = drawing(picture)
            if image is None:
                return [gr.skip()] * (len(sliders) + 2)
            z, as_seen, reconstruction = e.encode(image, label)
            return [*z, as_seen, reconstruction]

        for source in (pad, upload):
            source.change(encode, [source, z_label], [*sliders, seen, recon],
                          api_name="encode" if source is pad else False,
                          show_progress="hidden", trigger_mode="always_last")  # fmt: skip

        with gr.Tab("Interpolate"):
            with gr.Row():
                with gr.Column():
                    ends = gr.Radio(["test images", "drawings"], value="test images",
                                    label="from and to")  # fmt: skip
                    a = gr.Number(0, precision=0, label="test image a")
                    b = gr.Number(1, precision=0, label="test image b")
                    pick = gr.Button("Pick two at random")
                    steps = gr.Slider(2, 32, value=10, step=1, label="steps")
                    go = gr.Button("Interpolate", variant="primary")
                with gr.Column():
                    pad_a = gr.Sketchpad(label="drawing a", type="numpy", image_mode="RGBA",
                                         canvas_size=(200, 200), layers=False)  # fmt: skip
                    pad_b = gr.Sketchpad(label="drawing b", type="numpy", image_mode="RGBA",
                                         canvas_size=(200, 200), layers=False)  # fmt: skip
            strip = gr.Image(
                label="interpolation", type="numpy", interactive=False, elem_id="strip"
            )

        def interpolate(ends="test images", a=0, b=1, steps=10, pad_a=None, pad_b=None):
            if ends == "drawings":
                a, b = drawing(pad_a), drawing(pad_b)
                if a is None or b is None:
                    raise gr.Error("draw both pictures first")
            return e.interpolate(a, b, int(steps or 10))

        def random_pair():
            r = random.Random()
            return r.randrange(len(e.test_x)), r.randrange(len(e.test_x))

        pick.click(random_pair, None, [a, b], api_visibility="private")
        go.click(interpolate, [ends, a, b, steps, pad_a, pad_b], strip, api_name="interpolate")
    return page


def check_port(host: str, port: int) -> None:
    """Refuse a port another program holds, in one line, before anything is loaded."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise ConfigError(
                f"port={port} on {host} is in use or not available ({err.strerror}): pass "
                "port=<another>, or stop the program that holds it"
            ) from None


def serve(cfg: DictConfig) -> None:
    """Load the model once, then serve the page on cfg.host:cfg.port until Ctrl-C."""
    check_port(cfg.host, cfg.port)
    e = load_explorer(cfg)
    log.info(f"serving {e.source} on http://{cfg.host}:{cfg.port} (Ctrl-C stops it)")
    build_page(e).launch(
        server_name=cfg.host, server_port=cfg.port, share=False, show_error=True,
        inbrowser=False, footer_links=["api"], quiet=True,  # the line above says where
    )  # fmt: skip
