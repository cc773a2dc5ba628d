"""The end of ``mabware demo``: what one run did, and what the store learned.

The numbers in the table are the store's (``mabware.store.report`` reads
the merged state once every worker has flushed); the true rates are the
traffic generator's secret. Regret is in conversions: an arm's pulls times
the gap between the best true rate and its own, the conversions expected
to be lost by showing it, compared with what a uniform split (an A/B/C
test run to the end) would have lost on the same visitors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mabware.demo.traffic import TRUE_RATES, Tally

__all__ = ["DemoResult", "Totals", "report", "say", "summary_table"]

Totals = dict[str, tuple[float, float]]  # arm -> (pulls, reward sum)


@dataclass
class DemoResult:
    """What one run did, and what the store learned from it."""

    urls: dict[str, str]
    tally: Tally
    totals: Totals  # this run's, from the store
    replicas: int
    seconds: float
    interrupted: bool
    exit_code: int | None
    state: Path | None  # kept after the run, or None (a temporary one)
    workers: int = 2
    rates: dict[str, float] = field(default_factory=lambda: dict(TRUE_RATES))

    @property
    def consistent(self) -> bool:
        """The store holds exactly the pulls and purchases the visitors made."""
        return (
            all(
                (pulls, reward) == (self.tally.arms[arm], self.tally.bought[arm])
                for arm, (pulls, reward) in self.totals.items()
            )
            and sum(p for p, _ in self.totals.values()) == self.tally.visitors
        )

    def regret(self) -> tuple[float, float]:
        """(expected conversions lost to weaker arms, the same for a uniform split)."""
        best = max(self.rates.values())
        pulls = {arm: p for arm, (p, _) in self.totals.items() if arm in self.rates}
        lost = sum(n * (best - self.rates[arm]) for arm, n in pulls.items())
        mean = sum(self.rates.values()) / len(self.rates)
        return lost, sum(pulls.values()) * (best - mean)

    def to_json(self) -> dict[str, Any]:
        """The result as plain data (``mabware demo --json``)."""
        total = sum(p for p, _ in self.totals.values())
        regret, uniform = self.regret()
        t = self.tally
        return {
            "urls": self.urls,
            "workers": self.workers,
            "seconds": self.seconds,
            "interrupted": self.interrupted,
            "server_exit_code": self.exit_code,
            "state": None if self.state is None else str(self.state),
            "visitors": t.visitors,
            "returns": t.returns,
            "conversions": t.conversions,
            "refused": t.refused,
            "errors": t.errors,
            "last_error": t.last_error,
            "switched": t.switched,
            "pids": {str(pid): n for pid, n in sorted(t.pids.items())},
            "replicas": self.replicas,
            "consistent": self.consistent,
            "regret": regret,
            "uniform_regret": uniform,
            "arms": {
                arm: {
                    "pulls": pulls,
                    "conversions": reward,
                    "mean_reward": reward / pulls if pulls else None,
                    "true_rate": self.rates.get(arm),
                    "share": pulls / total if total else None,
                    "visitors": t.arms[arm],
                    "bought": t.bought[arm],
                }
                for arm, (pulls, reward) in self.totals.items()
            },
        }


def summary_table(result: DemoResult) -> Table:
    """Per arm: pulls, share and mean reward from the store, the hidden true rate, the regret.

    An arm's regret is its pulls times the gap between the best true rate
    and its own: the conversions expected to be lost by showing it.
    """
    total = sum(p for p, _ in result.totals.values())
    rewards = sum(r for _, r in result.totals.values())
    regret, uniform = result.regret()
    best = max(result.rates.values())
    table = Table(
        title=f"mabware demo: {result.tally.visitors:,} visitors in {result.seconds:.0f} s",
        caption=f"regret: expected conversions lost to weaker arms (uniform split: {uniform:,.1f})",
        show_footer=True,
    )
    table.add_column("arm", footer="all")
    table.add_column("pulls", justify="right", footer=f"{total:,.0f}")
    table.add_column("share", justify="right", footer="100%" if total else "-")
    table.add_column("conversions", justify="right", footer=f"{rewards:,.0f}")
    table.add_column("mean", justify="right", footer=_ratio(rewards, total))
    table.add_column("true rate", justify="right")
    table.add_column("regret", justify="right", footer=f"{regret:,.1f}")
    for arm, (pulls, reward) in result.totals.items():
        rate = result.rates.get(arm)
        table.add_row(
            arm,
            f"{pulls:,.0f}",
            f"{pulls / total:.1%}" if total else "-",
            f"{reward:,.0f}",
            _ratio(reward, pulls),
            "-" if rate is None else f"{rate:.4f}",
            "-" if rate is None else f"{pulls * (best - rate):,.1f}",
        )
    return table


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.4f}" if whole else "-"


def report(result: DemoResult, out: Console) -> None:
    """Print the summary table and what the run shows about the store."""
    out.print(summary_table(result))
    t = result.tally
    pulls = sum(p for p, _ in result.totals.values())
    rewards = sum(r for _, r in result.totals.values())
    lines = [
        f"The store holds exactly what the visitors did: {pulls:,.0f} pulls, "
        f"{rewards:,.0f} conversions."
        if result.consistent
        else f"The store holds {pulls:,.0f} pulls and {rewards:,.0f} conversions; the visitors "
        f"made {t.visitors:,} and {t.conversions:,} ("
        + ("visits cut off by Ctrl-C count in the shop only" if result.interrupted else "")
        + ("; " if result.interrupted else "")
        + "your own clicks count too).",
        f"{_counted(len(t.pids), 'worker')} answered ("
        + ", ".join(f"pid {pid}: {n:,}" for pid, n in sorted(t.pids.items()))
        + f"); {_counted(result.replicas, 'replica')} in the store.",
        f"{t.returns:,} returning visits: "
        + ("all saw" if not t.switched else f"{t.switched:,} did not see")
        + " their first variant again.",
    ]
    if t.errors or t.refused:
        lines.append(
            f"{t.errors:,} failed requests, {t.refused:,} refused purchases; "
            f"last error: {t.last_error}"
        )
    if result.state is not None:
        lines.append(f"State kept: mabware report --store file:{result.state}")
    for line in lines:
        say(out, line)


def say(console: Console, text: str) -> None:
    """Plain text (paths may hold ``[``: no markup), never wrapped (URLs get copied)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)
