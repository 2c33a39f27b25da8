"""The whole training step as one CUDA graph: when it is used, and (on a GPU) that replaying
it computes what the eager step does."""

import pytest
import torch

from cvae_lightning.training.cuda_graph import CapturedStep, choose_cuda_graph

SINGLE_GPU = dict(
    accelerator="gpu", devices=1, strategy="auto", precision="bf16-mixed",
    gradient_clip_val=None, accumulate_grad_batches=1, compile=False,
)  # fmt: skip


@pytest.mark.parametrize(
    "asked,changes,expected",
    [
        ("auto", {}, (True, None)),
        (True, {}, (True, None)),
        (False, {}, (False, None)),
        ("auto", {"accelerator": "cpu"}, (False, None)),  # the CPU default: no line
        (True, {"accelerator": "cpu"}, (False, "there is no CUDA device")),
        ("auto", {"strategy": "ddp", "devices": 2}, (False, "one GPU only")),
        ("auto", {"precision": "16-mixed"}, (False, "loss scaler")),
        ("auto", {"gradient_clip_val": 1.0}, (False, "gradient_clip_val=1.0")),
        ("auto", {"accumulate_grad_batches": 4}, (False, "accumulate_grad_batches")),
        ("auto", {"compile": "reduce-overhead"}, (False, "makes graphs of its own")),
    ],
)
def test_the_graph_is_used_where_it_can_be_and_the_reason_where_not(asked, changes, expected):
    graph, why = choose_cuda_graph(asked, **(SINGLE_GPU | changes))
    assert graph == expected[0]
    assert why == expected[1] if expected[1] is None else expected[1] in why


def test_a_graph_asked_for_on_a_cpu_is_one_console_line(tiny_cfg, caplog):
    from cvae_lightning.training.train import choose_step

    tiny_cfg.model.cuda_graph = True
    with caplog.at_level("INFO"):
        choose_step(tiny_cfg)
    assert tiny_cfg.model.cuda_graph is False
    assert "model.cuda_graph: training eagerly, as there is no CUDA device" in caplog.text


@pytest.mark.gpu
def test_replays_compute_what_the_eager_step_computes():
    torch.manual_seed(0)
    weight = torch.randn(4, 4, device="cuda")

    def step(x):
        weight.add_(0.1 * x.float().mean())  # state changed in place, as an optimizer does
        return (x.float() @ weight).sum()

    captured, eager = CapturedStep(step, warmup=2), []
    batches = [torch.randint(0, 255, (8, 4), dtype=torch.uint8, device="cuda") for _ in range(6)]
    state = weight.clone()
    outputs = [captured(b).item() for b in batches]
    weight.copy_(state)
    eager = [step(b).item() for b in batches]
    assert captured.graph is not None and outputs == pytest.approx(eager, rel=1e-5)
    with pytest.raises(ValueError, match="one batch shape"):
        captured(batches[0][:4])
