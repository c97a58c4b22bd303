"""The outcome of a latency check: per-item verdicts and the report (table, JSON, JUnit XML).

An item is ``ok``, ``improved`` (faster beyond tolerance: a note), ``noisy`` (a suspect not
confirmed on re-measurement), ``mismatch`` (a network slower than a LUT that records no end-to-end
error: reported, not failed), ``inconclusive`` (a suspect the machine's state cannot tell from a
regression: a busy neighbour, a machine far from the baseline's speed) or ``regressed`` (a
failure). A whole check is inconclusive, without measuring, when the baseline or LUT was made on
another host.

Exit codes: 0 pass, 1 a regression, 3 inconclusive (no regression, but something could not be
decided); 2 (bad input) is raised before anything is measured. :class:`CheckReport` renders the verdicts
as a fixed-width table, strict JSON and JUnit XML (one test case per item and the global-shift test).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from sgnas.fileio import atomic_write_bytes, json_safe
from sgnas.lut import Lut, utc_now

if TYPE_CHECKING:
    from .check_config import CheckConfig

OK, IMPROVED, NOISY, REGRESSED = "ok", "improved", "noisy", "regressed"
#: A network slower than the LUT predicts, when the LUT records no end-to-end error: reported, not failed.
MISMATCH = "mismatch"
#: A suspect the machine's state could not tell from a regression: neither passed nor failed.
INCONCLUSIVE = "inconclusive"
#: Exit code of an inconclusive check (0 pass, 1 regression, 2 bad input).
EXIT_INCONCLUSIVE = 3
REPORT_SCHEMA = 1
STATUSES = (OK, NOISY, IMPROVED, MISMATCH, INCONCLUSIVE, REGRESSED)


@dataclass
class ItemResult:
    """The verdict on one item; ``measurements_ms`` lists every median taken (first one first)."""

    name: str
    kind: str
    baseline_ms: float
    now_ms: float
    ratio: float
    tolerance: float
    status: str
    spread_now: float = 0.0
    baseline_spread: float = 0.0
    measurements_ms: list[float] = field(default_factory=list)
    time_s: float = 0.0
    note: str = ""
    arch: str | None = None
    #: Other processes' CPU use (cores) during each measurement (``None``: not measured).
    neighbour: list[float | None] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == REGRESSED

    def describe(self) -> str:
        """One line: what was compared and the verdict."""
        if self.kind == "global":
            text = (f"median ratio {self.ratio:.3f}x over {len(self.measurements_ms)} entries, "
                    f"limit {1 + self.tolerance:.3f}x: {self.status}")
        else:
            text = (f"baseline {self.baseline_ms:.4f} ms, now {self.now_ms:.4f} ms, ratio "
                    f"{self.ratio:.3f}x, limit {1 + self.tolerance:.3f}x (tolerance "
                    f"{100 * self.tolerance:.1f}%, spread then {100 * self.baseline_spread:.1f}% / now "
                    f"{100 * self.spread_now:.1f}%): {self.status}")
            if len(self.measurements_ms) > 1:
                runs = ", ".join(f"{m:.4f}" for m in self.measurements_ms)
                text += f"; measured {len(self.measurements_ms)} times: {runs} ms"
        if self.arch:
            text += f"; architecture {self.arch}"
        if self.note:
            text += f"; {self.note}"
        return text

    def to_dict(self) -> dict:
        return json_safe(asdict(self))


@dataclass
class CheckReport:
    """The outcome of a check: per-item results, the global-shift test, the noise seen, provenance."""

    mode: str
    source: str
    device: dict
    baseline_device: dict
    results: list[ItemResult]
    config: CheckConfig
    global_result: ItemResult | None = None
    noise: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=utc_now)
    #: Why the whole check could not be decided (another host: nothing was measured), with what to do.
    inconclusive_reason: str | None = None

    @property
    def items(self) -> list[ItemResult]:
        """Every test case: the items, then the global-shift test."""
        return self.results + ([self.global_result] if self.global_result is not None else [])

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.items if r.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def inconclusive(self) -> bool:
        """No regression, but the check (or an item) could not be decided."""
        return self.passed and (self.inconclusive_reason is not None
                                or any(r.status == INCONCLUSIVE for r in self.items))

    @property
    def verdict(self) -> str:
        return "FAIL" if not self.passed else "INCONCLUSIVE" if self.inconclusive else "PASS"

    @property
    def exit_code(self) -> int:
        """0 within tolerance, 1 on a regression, 3 (:data:`EXIT_INCONCLUSIVE`) inconclusive."""
        return 1 if not self.passed else EXIT_INCONCLUSIVE if self.inconclusive else 0

    def reason(self) -> str:
        """One line: why the check is inconclusive and what to do ("" when it is not)."""
        if self.inconclusive_reason:
            return self.inconclusive_reason
        undecided = [r for r in self.items if r.status == INCONCLUSIVE]
        if not undecided or not self.passed:
            return ""
        return (f"{len(undecided)} item(s) could not be decided on this machine's state "
                f"({undecided[0].name}: {undecided[0].note}); re-run when the runner is quiet")

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for r in self.items:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def summary(self) -> str:
        """One line: verdict, counts and the noise seen."""
        c = self.counts()
        if self.inconclusive_reason:
            return f"INCONCLUSIVE: {self.inconclusive_reason}"
        text = (f"{self.verdict}: {len(self.items)} checks on device {self.device.get('name', '?')}: "
                f"{c[OK]} ok, {c[NOISY]} noisy, {c[IMPROVED]} improved, "
                + (f"{c[MISMATCH]} mismatch, " if c[MISMATCH] else "")
                + (f"{c[INCONCLUSIVE]} inconclusive, " if c[INCONCLUSIVE] else "")
                + f"{c[REGRESSED]} regressed")
        return text + "; " + self.noise_line()

    def noise_line(self) -> str:
        n = self.noise
        parts = []
        if n.get("median_spread") is not None:
            parts.append(f"median spread {100 * n['median_spread']:.1f}% this run")
        if n.get("baseline_median_spread") is not None:
            parts.append(f"{100 * n['baseline_median_spread']:.1f}% in the baseline")
        if n.get("canary_drift") is not None:
            parts.append(f"canary drift {100 * n['canary_drift']:+.1f}% during the check")
        if n.get("canary_vs_lut") is not None:
            parts.append(f"canary {n['canary_vs_lut']:.2f}x its LUT value")
        if n.get("machine_factor") is not None:
            parts.append(f"machine {n['machine_factor']:.2f}x its baseline speed (probe; not a "
                         "regression)")
        if n.get("neighbour_max") is not None:
            parts.append(f"other processes used up to {n['neighbour_max']:.2f} cores "
                         f"(median {n['neighbour_median']:.2f}; contended above "
                         f"{self.config.max_neighbour:.2f})")
        if n.get("remeasured"):
            parts.append(f"{n['remeasured']} item(s) re-measured")
        return "noise: " + (", ".join(parts) if parts else "not measured")

    def table(self) -> str:
        """A fixed-width table: key, baseline ms, now ms, ratio, tolerance, status."""
        if self.inconclusive_reason and not self.results:
            return self.summary()
        rows = [("key", "baseline ms", "now ms", "ratio", "tol", "status")]
        for r in self.results:
            rows.append((r.name, f"{r.baseline_ms:.4f}", f"{r.now_ms:.4f}", f"{r.ratio:.3f}x",
                         f"{100 * r.tolerance:.1f}%", r.status))
        g = self.global_result
        if g is not None:
            rows.append((f"global-shift (median of {len(g.measurements_ms)})", "-", "-",
                         f"{g.ratio:.3f}x", f"{100 * g.tolerance:.1f}%", g.status))
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        lines = []
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:5], widths[1:5])]
            lines.append("  ".join(cells + [row[5]]))
        notes = [f"{r.name}: {r.note}" for r in self.items
                 if r.note and (r.status in (NOISY, REGRESSED, MISMATCH, INCONCLUSIVE)
                                or r.kind == "global")]
        return "\n".join(lines + [""] + notes + self.notes + [self.summary()])

    def to_dict(self) -> dict:
        cfg = asdict(self.config)
        return json_safe({
            "schema_version": REPORT_SCHEMA,
            "kind": "sgnas-check",
            "mode": self.mode,
            "source": self.source,
            "created": self.created,
            "passed": self.passed,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "inconclusive_reason": self.reason() or None,
            "counts": self.counts(),
            "device": self.device,
            "baseline_device": self.baseline_device,
            "environment": self.environment,
            "config": cfg,
            "noise": self.noise,
            "global": None if self.global_result is None else self.global_result.to_dict(),
            "results": [r.to_dict() for r in self.results],
            "notes": list(self.notes),
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one ``<testcase>`` per item and the global-shift test, ``<failure>`` on regression."""
        from .junit import JUnitCase, junit_xml

        dev = self.device.get("name", "device")
        cases = []
        if self.inconclusive_reason:
            cases.append(JUnitCase(name="host", classname=f"sgnas.check.{dev}.host",
                                   skipped=self.inconclusive_reason,
                                   details=self.inconclusive_reason))
        for r in self.items:
            failure = None
            if r.failed:
                failure = (f"{r.name} regressed: {r.ratio:.3f}x > {1 + r.tolerance:.3f}x "
                           f"({r.now_ms:.4f} ms vs {r.baseline_ms:.4f} ms)"
                           if r.kind != "global" else
                           f"global shift: median ratio {r.ratio:.3f}x > {1 + r.tolerance:.3f}x")
            cases.append(JUnitCase(
                name=r.name, classname=f"sgnas.check.{dev}.{r.kind}", time_s=r.time_s,
                failure=failure, failure_type="LatencyRegression", details=r.describe(),
                skipped=(f"inconclusive: {r.note}" if r.status == INCONCLUSIVE else None),
            ))
        props = {"mode": self.mode, "source": self.source, "device": self.device,
                 "baseline_device": self.baseline_device, "noise": self.noise,
                 "environment": self.environment}
        return junit_xml(f"sgnas check {dev}", cases, props, timestamp=self.created)

    def write_json(self, path: str | os.PathLike) -> None:
        atomic_write_bytes(path, self.to_json().encode())

    def write_junit(self, path: str | os.PathLike) -> None:
        atomic_write_bytes(path, self.to_junit().encode("utf-8"))


def noise_summary(results: Sequence[ItemResult], drift: float | None) -> dict:
    """The noise seen over ``results``: median/max spread now and in the baseline, re-measured
    suspects, and the canary's ``drift`` during the check."""
    measured = [r for r in results if r.kind not in ("global", "runtime")]
    recorded = [r for r in measured if r.kind != "network"]
    out: dict[str, Any] = {
        "median_spread": float(np.median([r.spread_now for r in measured])) if measured else None,
        "max_spread": float(max((r.spread_now for r in measured), default=0.0)) if measured else None,
        "baseline_median_spread": (float(np.median([r.baseline_spread for r in recorded]))
                                   if recorded else None),
        "remeasured": sum(len(r.measurements_ms) > 1 for r in measured),
        "noisy": sum(r.status == NOISY for r in measured),
        "canary_drift": drift,
    }
    gauged = [c for r in results for c in r.neighbour if c is not None]
    if gauged:
        out["neighbour_max"] = float(max(gauged))
        out["neighbour_median"] = float(np.median(gauged))
    return out


def report_notes(report: CheckReport, lut: Lut | None = None) -> list[str]:
    """Advice lines for ``report``: refresh an improved baseline, noise seen, an uncalibrated LUT."""
    notes = []
    improved = [r for r in report.results if r.status == IMPROVED and r.kind != "network"]
    if improved:
        notes.append(f"note: {len(improved)} item(s) got faster beyond tolerance; "
                     "refresh the baseline (sgnas-profile, or --update) to tighten the check")
    noisy = [r for r in report.results if r.status == NOISY]
    if noisy:
        notes.append(f"note: {len(noisy)} suspect(s) were noise (not confirmed on re-measurement)")
    if lut is not None and not lut.normalized:
        notes.append("note: the LUT was measured by the older, unnormalized protocol: compared in "
                     "absolute terms, so a machine-state change reads as a regression; re-profile it")
    if lut is not None and report.config.networks and lut.calibration is None:
        notes.append("note: the LUT has no calibration; networks are compared with its raw sum")
    mismatched = [r for r in report.results if r.status == MISMATCH]
    if mismatched:
        notes.append(f"note: {len(mismatched)} network(s) slower than the LUT predicts; the LUT "
                     "records no end-to-end error, so they are not failed")
    return notes
