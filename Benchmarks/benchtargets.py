"""The declarations of Benchmarks/targets.json and what the report scripts do with them (issue 30
items 1 and 5): a row's estimator and interval as declared, its verdict, the report header and the
chart. Standard library only; the charts need gnuplot (Scripts/bench installs gnuplot-nox).

A row's verdict: met when the declared interval lies entirely on the right side of the threshold
(a bound equal to the threshold is on the right side: targets are ≤ or ≥), missed when entirely on
the wrong side, inconclusive otherwise; context when the threshold is null; not measured without
data. A report row whose id is not declared for its report is an error, not a row."""
import json
import os
import random
import shutil
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.environ.get("DAXPIN_BENCH_TARGETS", os.path.join(HERE, "targets.json"))

MET, MISSED, INCONCLUSIVE, CONTEXT, NOT_MEASURED = "met", "**missed**", "inconclusive", "context", "not measured"
COLOURS = {MET: 0x1A9850, MISSED: 0xD73027, INCONCLUSIVE: 0xF39C12, CONTEXT: 0x8C8C8C}


class Undeclared(KeyError):
    pass


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def verdict(direction, threshold, low, high):
    """The verdict of an interval [low, high] against a threshold in a direction ("lower" or "higher")."""
    if threshold is None:
        return CONTEXT
    if low is None or high is None:
        return NOT_MEASURED
    good = (lambda v: v <= threshold) if direction == "lower" else (lambda v: v >= threshold)
    if good(low) and good(high):
        return MET
    if not good(low) and not good(high):
        return MISSED
    return INCONCLUSIVE


def iqr(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def percentile(sorted_values, p):
    """Linear interpolation between the closest ranks (as numpy's default)."""
    k = (len(sorted_values) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


TAIL_TABLE = ["| id | measure | side | n | p50 | p99 | p99.9 | max |", "|---|---|---|---|---|---|---|---|"]


def tail_row(row_id, measure, side, samples_ns):
    """One row of a tails table (estimator "percentiles"): p50, p99 (from 100 samples), p99.9 (from
    1,000) and max, in µs, of samples in ns; None when there are none."""
    s = sorted(samples_ns)
    if not s:
        return None
    def cell(p, need):
        return f"{percentile(s, p) / 1e3:,.1f} µs" if len(s) >= need else "n/a"
    return (f"| {row_id} | {measure} | {side} | {len(s):,} | {cell(0.5, 1)} | {cell(0.99, 100)} | "
            f"{cell(0.999, 1000)} | {s[-1] / 1e3:,.1f} µs |")


class Result:
    def __init__(self, row, estimate, low, high, n, interval_name):
        self.row, self.estimate, self.low, self.high, self.n = row, estimate, low, high, n
        self.interval_name = interval_name
        self.verdict = verdict(row["direction"], row.get("threshold"), low, high) if estimate is not None else (
            CONTEXT if row.get("threshold") is None else NOT_MEASURED)

    def ratio_text(self, digits=3):
        return "n/a" if self.estimate is None else f"{self.estimate:.{digits}f}"

    def interval_text(self, digits=3):
        if self.low is None:
            return "n/a"
        return f"{self.low:.{digits}f} – {self.high:.{digits}f} ({self.interval_name}, n={self.n})"


class Declarations:
    """The rows of one report (latest, newest-kernel, before-after, zero-copy)."""

    def __init__(self, report, path=None):
        with open(path or TARGETS) as f:
            doc = json.load(f)
        self.report = report
        self.bootstrap = doc["bootstrap"]
        self.rows = {r["id"]: r for r in doc["rows"] if r["report"] == report}
        self.used = []

    def row(self, row_id):
        if row_id not in self.rows:
            raise Undeclared(f"report row {row_id!r} is not declared for report {self.report!r} in {TARGETS}")
        if row_id not in self.used:
            self.used.append(row_id)
        return self.rows[row_id]

    def target_text(self, row_id):
        row = self.row(row_id)
        threshold = row.get("threshold")
        if threshold is None:
            return "context"
        unit = " " + row["threshold_unit"] if row.get("threshold_unit") else ""
        return f"{row.get('ratio', '')} {'≤' if row['direction'] == 'lower' else '≥'} {threshold:g}{unit}".strip()

    # --- estimators -----------------------------------------------------------------------------
    @staticmethod
    def _estimate(estimator, a, b, pairs, rounds, samples, value):
        if estimator == "ratio_of_medians":
            ma, mb = median(a or []), median(b or [])
            return ma / mb if ma is not None and mb else None
        if estimator == "median_of_paired_ratios":
            return median([x / y for x, y in pairs or [] if y])
        if estimator == "ratio_of_round_medians":
            ma, mb = median([x for x, _ in rounds or []]), median([y for _, y in rounds or []])
            return ma / mb if ma is not None and mb else None
        if estimator == "median_of_per_round_ratios":
            return median([x / y for x, y in rounds or [] if y])
        if estimator == "median":
            return median(samples or [])
        if estimator == "value":
            return value
        raise ValueError(f"unknown estimator {estimator!r}")

    def measure(self, row_id, a=None, b=None, pairs=None, rounds=None, samples=None, value=None):
        """The row's declared estimator over the data, with its declared interval.
        a, b: two series (ratio a / b); pairs: (x, y) measured together (ratio x / y); rounds: (x, y)
        per round; samples: absolute values; value: one value."""
        row = self.row(row_id)
        estimator, interval = row["estimator"], row["interval"]
        clean = lambda s: [v for v in s if v is not None] if s is not None else None
        a, b, samples = clean(a), clean(b), clean(samples)
        pairs = [p for p in pairs if p[0] is not None and p[1] is not None] if pairs is not None else None
        rounds = [p for p in rounds if p[0] is not None and p[1] is not None] if rounds is not None else None
        estimate = self._estimate(estimator, a, b, pairs, rounds, samples, value)
        n = {"ratio_of_medians": min(len(a or []), len(b or [])), "median_of_paired_ratios": len(pairs or []),
             "ratio_of_round_medians": len(rounds or []), "median_of_per_round_ratios": len(rounds or []),
             "median": len(samples or []), "value": 0 if value is None else 1}[estimator]
        if estimate is None:
            return Result(row, None, None, None, n, interval)
        if interval == "value":
            low = high = estimate
        elif interval == "range":
            low, high = min(samples), max(samples)
        elif interval == "iqr":
            per = ([x / y for x, y in (pairs or rounds) if y] if (pairs or rounds) else samples)
            low, high = iqr(per)
        elif interval == "bootstrap90":
            low, high = self._bootstrap(estimator, a, b, pairs, rounds, samples)
        else:
            raise ValueError(f"unknown interval {interval!r}")
        return Result(row, estimate, low, high, n, {"bootstrap90": "bootstrap 90 % CI", "iqr": "IQR of rounds",
                                                    "range": "range", "value": "value"}[interval])

    def _bootstrap(self, estimator, a, b, pairs, rounds, samples):
        rng = random.Random(self.bootstrap["seed"])
        resamples, level = self.bootstrap["resamples"], self.bootstrap["level"]
        draw = lambda s: rng.choices(s, k=len(s)) if s else s
        estimates = []
        for _ in range(resamples):
            if estimator == "ratio_of_medians":
                e = self._estimate(estimator, draw(a), draw(b), None, None, None, None)
            elif estimator == "median_of_paired_ratios":
                e = self._estimate(estimator, None, None, draw(pairs), None, None, None)
            elif estimator in ("ratio_of_round_medians", "median_of_per_round_ratios"):
                e = self._estimate(estimator, None, None, None, draw(rounds), None, None)
            elif estimator == "median":
                e = median(draw(samples))
            else:
                raise ValueError(f"no bootstrap for estimator {estimator!r}")
            if e is not None:
                estimates.append(e)
        if not estimates:
            return None, None
        estimates.sort()
        tail = (1 - level) / 2
        return percentile(estimates, tail), percentile(estimates, 1 - tail)


# --- header -----------------------------------------------------------------------------------
def read_environment(raw):
    path = os.path.join(raw, "environment.txt")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return dict(line.split(None, 1) for line in f.read().splitlines() if " " in line)


def header_lines(env, extra=()):
    """The run's identity: commit, kernel, rdma-core, date, and whether it was shortened."""
    settings = env.get("settings", "?").strip()
    run = ("full run: every count at its default" if settings == "none" else
           f"**changed or shortened run** (settings other than the defaults: `{settings}`)" if settings != "?" else
           "settings: not recorded by this run")
    return [f"- commit: {env.get('commit', '?')}", f"- kernel: {env.get('kernel', '?')}",
            f"- rdma-core: {env.get('rdma_core', '?')}", f"- date: {env.get('date', '?')}",
            f"- {run}", *extra]


# --- chart ------------------------------------------------------------------------------------
def oriented(result):
    """(estimate, low, high, threshold) on the axis where above 1 means DaxPin (the row's first side) is better."""
    row = result.row
    flip = row["direction"] == "lower"
    f = (lambda v: None if v is None or v == 0 else 1 / v) if flip else (lambda v: v)
    low, high = f(result.low), f(result.high)
    if flip:
        low, high = high, low
    threshold = row.get("threshold")
    return f(result.estimate), low, high, (None if threshold is None else f(threshold))


def chartable(result):
    return result.row["estimator"] not in ("median", "value") and result.estimate not in (None, 0)


def _points(results):
    lines = []
    for x, (label, result) in enumerate(results):
        est, low, high, threshold = oriented(result)
        colour = COLOURS.get(result.verdict, COLOURS[CONTEXT])
        nan = lambda v: "NaN" if v is None else repr(v)
        lines.append(f'{x} "{label}" {nan(est)} {nan(low if low is not None else est)} '
                     f'{nan(high if high is not None else est)} {colour} {nan(threshold)}')
    return lines


def _panel(data, title, ylabel, count, threshold_title="threshold (oriented)", legend=True):
    legend_lines = ""
    if legend:
        legend_lines = ", ".join(f'NaN with points pt 7 ps 1.3 lc rgb "#{c:06x}" title "{name.strip("*")}"'
                                 for name, c in COLOURS.items()) + ", "
    return f"""
set title "{title}"
set ylabel "{ylabel}"
set logscale y 2
set xrange [-0.6:{count - 0.4}]
set xtics rotate by -35 left nomirror
set grid ytics
set key outside right top
unset arrow
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "#555555"
plot "{data}" using 1:3:4:5:6:xtic(2) with yerrorbars pt 7 ps 1.3 lw 2 lc rgb variable notitle, \\
     "" using 1:7:(0.38) with xerrorbars pt -1 lw 3 lc rgb "#000000" title "{threshold_title}", \\
     {legend_lines}NaN with lines dt 2 lc rgb "#555555" title "parity (1)"
"""


def chart(png, title, results, ylabel="better for DaxPin →  (peer / DaxPin for lower-is-better rows)", note=""):
    """One dot-and-whisker chart of RESULTS ([(label, Result)]): the estimate coloured by its verdict,
    whiskers the declared interval, the threshold a black dash, all oriented so above 1 is better.
    Returns the labels left off (rows without a ratio) for the report to say so; None without gnuplot."""
    points = [(label, r) for label, r in results if chartable(r)]
    left_off = [label for label, r in results if not chartable(r)]
    if not points or not shutil.which("gnuplot"):
        return None if not shutil.which("gnuplot") else left_off
    data = os.path.splitext(png)[0] + ".dat"
    with open(data, "w") as f:
        f.write("# x label estimate low high colour threshold, oriented: above 1 is better\n")
        f.write("\n".join(_points(points)) + "\n")
    script = f"""
set terminal pngcairo noenhanced size 1400,{700 if len(points) > 8 else 600} font ",10"
set output "{png}"
set bmargin 12
{_panel(data, title + (chr(92) + 'n' + note if note else ''), ylabel, len(points))}
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return left_off


def two_panel_chart(png, title, top, bottom, top_ylabel, bottom_ylabel, bottom_colours):
    """before-after: each build against its peer (top) and HEAD / BASE (bottom), one x per row."""
    if not shutil.which("gnuplot") or not top:
        return None
    base = os.path.splitext(png)[0]
    with open(base + ".dat", "w") as f:
        f.write("# x label estimate low high colour threshold (oriented)\n" + "\n".join(_points(top)) + "\n")
    with open(base + ".change.dat", "w") as f:
        f.write("# x label HEAD/BASE low high colour threshold (oriented: above 1 is HEAD better)\n")
        for x, (label, est, low, high, colour) in enumerate(bottom):
            nan = lambda v: "NaN" if v is None else repr(v)
            f.write(f'{x} "{label}" {nan(est)} {nan(low)} {nan(high)} {colour} 1.0\n')
    legend = ", ".join(f'NaN with points pt 7 ps 1.3 lc rgb "#{c:06x}" title "{name}"' for name, c in bottom_colours.items())
    script = f"""
set terminal pngcairo noenhanced size 1400,1100 font ",10"
set output "{png}"
set multiplot layout 2,1
set bmargin 9
{_panel(base + '.dat', title, top_ylabel, len(top))}
set title "HEAD / BASE per row: whiskers the IQR of the per-round HEAD / BASE; a change when 1.0 lies outside"
set ylabel "{bottom_ylabel}"
set xrange [-0.6:{len(bottom) - 0.4}]
plot "{base}.change.dat" using 1:3:4:5:6:xtic(2) with yerrorbars pt 7 ps 1.3 lw 2 lc rgb variable notitle, \\
     {legend}, NaN with lines dt 2 lc rgb "#555555" title "no change (1)"
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return []
