"""`command`: hand a variant's sample to an external trainer (a nanotron + lighteval job, a cluster script).

For each variant and seed, tamis writes `request.json` in the evaluation's work directory:

    {"variant": "gopher_quality", "seed": 0, "shards": ["/…/samples/gopher_quality/seed-0.parquet"],
     "token_budget": 50000, "tokens": 50000, "documents": 61, "holdout": ["/…/samples/holdout.parquet"],
     "workdir": "/…/evals/gopher_quality/seed-0/command", "metrics_path": "/…/metrics.json"}

then runs the command (in the ablation file's directory) and reads the metrics back from `metrics_path`, a
JSON object `{metric name: number}` (or `{"metrics": {...}}`) that the command writes. `{request}`,
`{metrics}`, `{workdir}`, `{variant}` and `{seed}` in the command's arguments are replaced, and the
environment has TAMIS_ABLATE_REQUEST and TAMIS_ABLATE_METRICS. A non-zero exit, a time-out or a missing or
malformed metrics file fails this variant only; the command's output is kept in `command.log`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from tamis.ablate.evaluator import EvalInput, Evaluator, EvaluatorError, register_evaluator

LOG_TAIL = 400


@register_evaluator("command")
class CommandEvaluator(Evaluator):
    """Runs an external command on the variant's sample and reads its metrics from a JSON file."""

    def __init__(self, command: str | list[str], timeout: float | None = None, env: dict[str, str] | None = None,
                 num_cpus: float = 1, num_gpus: float = 0):
        """
        Args:
            command: the command line (a string, split like a shell would, or a list of arguments).
            timeout: seconds before the command is killed and the variant counted as failed.
            env: extra environment variables.
            num_cpus: Ray CPUs reserved while it runs (a job that only submits elsewhere needs few).
            num_gpus: Ray GPUs reserved while it runs.
        """
        self.command = command
        self.timeout = timeout
        self.env = env
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus

    def check(self) -> None:
        if not (self.command.strip() if isinstance(self.command, str) else self.command):
            raise ValueError("command: must not be empty")

    def resources(self, cluster: dict[str, float]) -> dict[str, float]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}

    def evaluate(self, sample: EvalInput) -> dict[str, float]:
        workdir = Path(sample.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        request_path, metrics_path = workdir / "request.json", workdir / "metrics.json"
        metrics_path.unlink(missing_ok=True)
        request = {**sample.to_dict(), "metrics_path": str(metrics_path)}
        request_path.write_text(json.dumps(request, indent=1))
        fields = {"request": str(request_path), "metrics": str(metrics_path), "workdir": str(workdir),
                  "variant": sample.variant, "seed": str(sample.seed)}
        args = shlex.split(self.command) if isinstance(self.command, str) else list(self.command)
        args = [_substitute(arg, fields) for arg in args]
        env = {**os.environ, **(self.env or {}), "TAMIS_ABLATE_REQUEST": str(request_path),
               "TAMIS_ABLATE_METRICS": str(metrics_path)}
        log_path = workdir / "command.log"
        try:
            with open(log_path, "wb") as log:
                completed = subprocess.run(args, cwd=sample.base_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise EvaluatorError(f"command not found: {args[0]!r}") from None
        except subprocess.TimeoutExpired:
            raise EvaluatorError(f"command timed out after {self.timeout} s (log: {log_path})") from None
        if completed.returncode != 0:
            tail = log_path.read_text(errors="replace").strip()[-LOG_TAIL:].replace("\n", " | ")
            raise EvaluatorError(f"command exited with status {completed.returncode}: {tail}")
        if not metrics_path.is_file():
            raise EvaluatorError(f"command succeeded but wrote no metrics file {metrics_path}")
        try:
            metrics = json.loads(metrics_path.read_text())
        except json.JSONDecodeError as exc:
            raise EvaluatorError(f"metrics file {metrics_path} is not JSON: {exc}") from None
        if isinstance(metrics, dict) and isinstance(metrics.get("metrics"), dict):
            metrics = metrics["metrics"]
        if not isinstance(metrics, dict):
            raise EvaluatorError(f"metrics file {metrics_path}: expected an object of metric: number")
        return metrics


def _substitute(arg: str, fields: dict[str, str]) -> str:
    """Replace the `{name}` placeholders tamis knows, and only those (the argument may hold other braces)."""
    for name, value in fields.items():
        arg = arg.replace("{" + name + "}", value)
    return arg
