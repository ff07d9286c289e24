"""Progress for long jobs: one bar for a whole build, stage names on it, an honest estimate.

A build is a list of stages, each with an estimate of its seconds. The bar counts estimated
seconds, so tqdm's rate is "estimated seconds per real second" and its remaining time scales
every stage's estimate by how fast the finished work actually went. A stage reports its own
progress as a fraction (a Trainer callback does it per optimiser step, with the loss and reward
accuracy in the postfix instead of the Trainer's raw log lines).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from transformers import TrainerCallback

#: A stage's progress: (fraction of the stage done, short status text or "").
Report = Callable[[float, str], None]


class BuildProgress:
    """One bar over named stages. ``enabled=False`` keeps the bookkeeping and prints nothing."""

    def __init__(self, stages: Sequence[tuple[str, float]], desc: str, enabled: bool = True):
        from tqdm.auto import tqdm

        self.estimates = dict(stages)
        self.order = [name for name, _ in stages]
        self.done: set[str] = set()
        self.bar = tqdm(total=round(sum(self.estimates.values()), 1), desc=desc, unit="est-s", disable=not enabled,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, about {remaining} left{postfix}")
        self.desc = desc
        self._stage = ""
        self._fraction = 0.0

    def _completed(self) -> float:
        """Estimated seconds of the finished stages other than the current one."""
        return sum(self.estimates[s] for s in self.done if s != self._stage)

    def stage(self, name: str) -> Report:
        """Start stage ``name`` and return its reporter."""
        self._stage, self._fraction = name, 0.0
        self.bar.set_description_str(f"{self.desc} [{name}]", refresh=False)
        self._move(0.0, "")
        return self._report

    def _report(self, fraction: float, status: str = "") -> None:
        self._move(min(1.0, max(self._fraction, fraction)), status)

    def _move(self, fraction: float, status: str) -> None:
        self._fraction = fraction
        target = self._completed() + fraction * self.estimates[self._stage]
        self.bar.update(round(target - self.bar.n, 3))
        self.bar.set_postfix_str(status, refresh=True)

    def finish_stage(self) -> None:
        self._move(1.0, "")
        self.done.add(self._stage)

    def close(self) -> None:
        self.bar.close()


class TrainerProgress(TrainerCallback):
    """Reports a Trainer run as a fraction of its steps, with the latest loss and reward accuracy."""

    def __init__(self, report: Report, share: float = 1.0, offset: float = 0.0):
        self.report, self.share, self.offset = report, share, offset
        self.status = ""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            parts = [f"loss {float(logs['loss']):.3f}"]
            if "reward_accuracy" in logs:
                parts.append(f"acc {float(logs['reward_accuracy']):.2f}")
            self.status = ", ".join(parts)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.max_steps:
            self.report(self.offset + self.share * state.global_step / state.max_steps,
                        f"step {state.global_step}/{state.max_steps}" + (f", {self.status}" if self.status else ""))


def console_report(desc: str) -> tuple[Report, Callable[[], None]]:
    """A reporter with its own bar (for a stand-alone training run), and a function that closes it."""
    progress = BuildProgress([(desc, 1.0)], desc)
    return progress.stage(desc), progress.close
