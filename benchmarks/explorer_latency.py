"""What a slider move costs the explorer (app.py), measured through its API:

    uv run --extra app benchmarks/explorer_latency.py [--moves 200] [ckpt_path=...]

Serves the page in this process on a free port, then moves one latent coordinate `--moves`
times through the /decode endpoint (what the page calls on a slider move) and prints the median
and 95th percentile of: Gradio's HTTP API (POST /gradio_api/run/decode: the server's whole work,
decoding, the 2-D view, encoding both images, plus the local round trip); the same call through
gradio_client (which adds its own protocol); and the server's functions alone.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from cvae_lightning.app.page import build_page, load_explorer  # noqa: E402
from cvae_lightning.cli.runs import register_resolvers  # noqa: E402


def percentiles(seconds: list[float]) -> str:
    ms = sorted(s * 1e3 for s in seconds)
    return f"median {statistics.median(ms):.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("overrides", nargs="*", help="app config overrides, e.g. ckpt_path=...")
    args = parser.parse_args()
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("app", overrides=args.overrides)
    explorer = load_explorer(cfg)
    page = build_page(explorer)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        client = Client(url, verbose=False, download_files=False)
        http = httpx.Client(base_url=url)
        z, label = explorer.start("test", 0), explorer.classes[0] if explorer.classes else None
        lo, hi = explorer.ranges[0]
        values = [lo + (hi - lo) * i / (args.moves - 1) for i in range(args.moves)]
        for v in values[:10]:  # warm-up
            client.predict(v, *z[1:], label, api_name="/decode")
        api, via_client, alone = [], [], []
        for v in values:
            start = time.perf_counter()
            answer = http.post("gradio_api/run/decode", json={"data": [v, *z[1:], label]})
            answer.raise_for_status()
            api.append(time.perf_counter() - start)
            start = time.perf_counter()
            client.predict(v, *z[1:], label, api_name="/decode")
            via_client.append(time.perf_counter() - start)
            start = time.perf_counter()
            explorer.decode([v, *z[1:]], label), explorer.where([v, *z[1:]])
            alone.append(time.perf_counter() - start)
    finally:
        page.close()
    print(f"model {explorer.source}, latent {explorer.model.latent}; {args.moves} slider moves")
    print(f"Gradio's HTTP API (POST /gradio_api/run/decode on 127.0.0.1): {percentiles(api)}")
    print(f"the same through gradio_client: {percentiles(via_client)}")
    print(f"the server's functions alone (decode + the 2-D view): {percentiles(alone)}")


if __name__ == "__main__":
    main()
