"""A callback for the Ctrl-C test: the process sends itself SIGINT at a given step."""

import os
import signal

import lightning as L


class InterruptAtStep(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in a terminal sends
