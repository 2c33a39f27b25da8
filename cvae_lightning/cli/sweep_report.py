"""A Hydra callback that reports every job of a multirun, failed ones included, at its end."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SweepReport(Callback):
    """Keeps `report.json` in the sweep dir up to date after every job (overrides, status,
    result or error) and logs each failure as it happens. A failing job does not stop the
    others: Hydra runs them all, then re-raises the first failure, so the summary is logged
    after each job rather than at the end, which a failed sweep never reaches."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        ok = job_return.status == JobStatus.COMPLETED
        value = job_return._return_value
        self.jobs.append(
            {
                "job": config.hydra.job.num,
                "overrides": list(job_return.overrides or []),
                "dir": config.hydra.runtime.output_dir,
                "status": "completed" if ok else "failed",
                "result": value if ok and isinstance(value, int | float) else None,
                "error": None if ok else f"{type(value).__name__}: {value}",
            }
        )
        job = self.jobs[-1]
        if not ok:
            log.error(f"job {job['job']} ({' '.join(job['overrides'])}) failed: {job['error']}")
        report = Path(config.hydra.sweep.dir) / "report.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(self.jobs, indent=2))
        done = sum(j["status"] == "completed" for j in self.jobs)
        log.info(f"sweep: {done} of {len(self.jobs)} jobs completed so far; see {report}")
