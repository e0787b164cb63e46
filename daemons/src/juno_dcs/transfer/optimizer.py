"""The per-link concurrency optimizer, FTS-like: start small, grow while the success rate holds and the
throughput rises, shrink on failures or when throughput falls, always between the link's min and max.
Pure logic: the worker feeds it a window of outcomes and stores the decision it returns."""

from __future__ import annotations

from dataclasses import dataclass

from juno_dcs.transfer.config import OptimizerConfig


@dataclass(frozen=True)
class Window:
    ok: int
    failed: int
    throughput: float | None  # MB/s, mean per file over the window
    queued: int
    active: int


@dataclass(frozen=True)
class Decision:
    limit: int
    reason: str
    success_rate: float | None


def decide(current: int, window: Window, previous_throughput: float | None, cfg: OptimizerConfig) -> Decision:
    done = window.ok + window.failed
    rate = window.ok / done if done else None
    low, high = cfg.min, max(cfg.min, cfg.max)
    current = min(max(current, low), high)
    if rate is not None and rate < cfg.target_success:
        new = max(low, current // 2 if rate < 0.5 else current - 1)
        return Decision(new, f"success rate {rate:.0%} below {cfg.target_success:.0%}: decrease", rate)
    if window.queued == 0 and window.active < current:
        return Decision(current, "no queue: keep", rate)
    if done == 0:
        return Decision(current, "no transfer ended in the window: keep", rate)
    tput = window.throughput
    if previous_throughput and tput is not None and tput < 0.8 * previous_throughput and current > low:
        return Decision(current - 1, f"throughput fell ({previous_throughput:.1f} -> {tput:.1f} MB/s): decrease", rate)
    if window.queued > 0 and current < high:
        step = cfg.step if window.queued > 5 * current else 1
        trend = ""
        if previous_throughput is not None and tput is not None:
            trend = f" ({previous_throughput:.1f} -> {tput:.1f} MB/s)"
        return Decision(min(high, current + step), f"success {rate:.0%}, queue {window.queued}{trend}: increase",
                        rate)
    return Decision(current, f"success {rate:.0%} at the limit: keep", rate)
