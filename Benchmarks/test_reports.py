#!/usr/bin/env python3
"""The benchmark reports against their declarations (issue 30 items 1, 5 and 6), standard library only:
  python3 -m unittest discover -s Benchmarks -p 'test_reports.py'
Runs every report script over the synthetic raw series of Benchmarks/tests/fixture/ (written by
Benchmarks/tests/make_fixture.py) and checks that every row a report prints is declared for that
report in Benchmarks/targets.json, that the verdicts follow the declared rule (including at its
edges), and that bench-compare's change rule flags a change only when 1.0 lies outside the per-round
HEAD / BASE interval. Charts are not drawn here (gnuplot is hidden from the scripts)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "tests", "fixture")
sys.path.insert(0, HERE)
import benchtargets  # noqa: E402

with open(os.path.join(HERE, "targets.json")) as _f:
    DECLARED = json.load(_f)
DECLARED_BY_ID = {r["id"]: r for r in DECLARED["rows"]}
VERDICTS = {"met", "**missed**", "inconclusive", "context"}


def run_reports(*commands):
    """Runs the report scripts side by side; each must exit 0 (an undeclared row makes it fail)."""
    env = dict(os.environ, PATH="/nonexistent")   # no gnuplot: the tables only, and fast
    running = [(args, subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)) for args in commands]
    for args, process in running:
        _, err = process.communicate(timeout=60)
        if process.returncode:
            raise AssertionError(f"{os.path.basename(args[0])} failed:\n{err}")


def table_rows(path):
    """{id: [cells]} of the markdown table rows whose first cell is a row id."""
    rows = {}
    with open(path) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or set(line) <= set("|-"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if i + 1 < len(lines) and lines[i + 1].startswith("|") and set(lines[i + 1]) <= set("|-"):
            if cells[0] != "id":   # every table a report prints starts with an id column
                rows.setdefault(f"<table without an id column: {line}>", []).append(cells)
            continue
        rows.setdefault(cells[0], []).append(cells)
    return rows


class Reports(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="daxpin-reports-")
        run_reports([os.path.join(HERE, "report.py"), os.path.join(FIXTURE, "stable"), cls.out],
                    [os.path.join(HERE, "report_newest_kernel.py"), os.path.join(FIXTURE, "newest"), cls.out],
                    [os.path.join(HERE, "report_zero_copy.py"), os.path.join(FIXTURE, "zero-copy"), cls.out],
                    [os.path.join(HERE, "report_scaling.py"), os.path.join(FIXTURE, "scaling"), cls.out],
                    [os.path.join(HERE, "report_compare.py"), os.path.join(cls.out, "before-after.md"), "test",
                     "BASE", "HEAD", os.path.join(FIXTURE, "compare", "stable")])
        cls.tables = {report: table_rows(os.path.join(cls.out, f"{name}.md")) for report, name in
                      (("latest", "latest"), ("newest-kernel", "newest-kernel"), ("zero-copy", "zero-copy"), ("scaling", "scaling"),
                       ("before-after", "before-after"))}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_every_printed_row_is_declared_for_its_report(self):
        for report, rows in self.tables.items():
            declared = {r["id"] for r in DECLARED["rows"] if r["report"] == report}
            self.assertTrue(rows, f"{report}: no table rows")
            for row_id in rows:
                self.assertIn(row_id, declared, f"{report} prints row {row_id!r}, which targets.json does not declare")

    def test_every_declared_row_is_printed_from_a_complete_fixture(self):
        for report, rows in self.tables.items():
            for r in DECLARED["rows"]:
                if r["report"] == report and r["id"] != "rev-16-metrics":   # a suite not in the default set
                    self.assertIn(r["id"], rows, f"{report}: declared row {r['id']!r} was not printed")

    def test_declarations_are_complete(self):
        ids = [r["id"] for r in DECLARED["rows"]]
        self.assertEqual(len(ids), len(set(ids)), "row ids must be unique")
        for r in DECLARED["rows"]:
            for key in ("id", "report", "metric", "direction", "estimator", "interval", "rounds", "threshold", "peer"):
                self.assertIn(key, r, f"{r['id']}: no {key}")
            self.assertIn(r["direction"], ("lower", "higher"))
            self.assertIn(r["estimator"], DECLARED["estimators"])
            self.assertIn(r["interval"], DECLARED["intervals"])

    def test_tails_print_only_the_percentiles_their_samples_support(self):
        for report, row_id in (("latest", "tail-revocation"), ("latest", "tail-write64"), ("latest", "tail-durable"),
                               ("newest-kernel", "nk-tail-revocation"), ("newest-kernel", "nk-tail-flush")):
            for cells in self.tables[report][row_id]:
                n = int(cells[3].replace(",", ""))
                self.assertEqual(cells[5] == "n/a", n < 100, f"{report} {row_id}: p99 with n={n}")
                self.assertEqual(cells[6] == "n/a", n < 1000, f"{report} {row_id}: p99.9 with n={n}")
        # 1..2000 µs in ns: interpolated between the closest ranks, as benchtargets.percentile.
        many = benchtargets.tail_row("t", "m", "s", [1000 * v for v in range(1, 2001)]).split(" | ")
        self.assertEqual(many[3:8], ["2,000", "1,000.5 µs", "1,980.0 µs", "1,998.0 µs", "2,000.0 µs |"])
        self.assertIsNone(benchtargets.tail_row("t", "m", "s", []))

    def test_an_undeclared_row_stops_a_report(self):
        declared = benchtargets.Declarations("latest")
        with self.assertRaises(benchtargets.Undeclared):
            declared.measure("no-such-row", a=[1.0], b=[1.0])

    def test_verdicts_of_the_fixture(self):
        verdict = lambda report, row_id: self.tables[report][row_id][0][-1]
        expected = {("latest", "rev-1"): "inconclusive", ("latest", "rev-16"): "met", ("latest", "rev-64"): "**missed**",
                    ("latest", "pin-tmpfs-c"): "met", ("latest", "durable-paired"): "**missed**",
                    ("latest", "storage-ib"): "met", ("latest", "storage-fio"): "context", ("latest", "idle-ticks"): "met",
                    ("newest-kernel", "nk-odp-tmpfs"): "context", ("newest-kernel", "nk-flush-c"): "met",
                    ("zero-copy", "write64k"): "**missed**",
                    ("zero-copy", "durable4k"): "met", ("zero-copy", "check_cost"): "met",
                    ("scaling", "scale-regions-16"): "met", ("scaling", "scale-regions-1024"): "**missed**",
                    ("scaling", "mem-rss-per-region"): "context", ("scaling", "scale-concurrent-4"): "met"}
        for (report, row_id), want in expected.items():
            self.assertEqual(verdict(report, row_id), want, f"{report} {row_id}")
        for report, rows in self.tables.items():
            if report == "before-after":
                continue
            for row_id, cells in rows.items():
                if row_id.startswith("profile-") or DECLARED_BY_ID.get(row_id, {}).get("estimator") == "percentiles":
                    continue   # context tables without a verdict column (stages, instructions, tails)
                for c in cells:
                    self.assertTrue(c[-1] in VERDICTS or c[-1].startswith("not measured") or c[-1].startswith("failed"),
                                    f"{report} {row_id}: verdict {c[-1]!r}")

    def test_before_after_flags_a_change_only_outside_the_interval(self):
        rows = self.tables["before-after"]
        self.assertEqual(rows["ba-rev-64"][0][-1], "HEAD worse")      # HEAD 20 % slower in every round
        self.assertEqual(rows["ba-rev-16"][0][-1], "no change shown")
        self.assertIn("**missed**", rows["ba-rev-64"][0][5])           # HEAD's own verdict against its peer
        self.assertIn("met", rows["ba-rev-64"][0][4])


class VerdictRule(unittest.TestCase):
    """met only when the whole interval is on the right side; a bound on the threshold is on the right side."""

    def test_lower(self):
        v = benchtargets.verdict
        self.assertEqual(v("lower", 1.10, 0.90, 1.10), "met")
        self.assertEqual(v("lower", 1.10, 0.90, 1.1000001), "inconclusive")
        self.assertEqual(v("lower", 1.10, 1.1000001, 1.3), "**missed**")
        self.assertEqual(v("lower", 1.10, 1.10, 1.3), "inconclusive")
        self.assertEqual(v("lower", 0, 0, 0), "met")

    def test_higher(self):
        v = benchtargets.verdict
        self.assertEqual(v("higher", 0.95, 0.95, 1.2), "met")
        self.assertEqual(v("higher", 0.95, 0.9499999, 1.2), "inconclusive")
        self.assertEqual(v("higher", 0.95, 0.80, 0.9499999), "**missed**")
        self.assertEqual(v("higher", 0.95, 0.80, 0.95), "inconclusive")

    def test_context_and_missing(self):
        self.assertEqual(benchtargets.verdict("lower", None, 0.5, 2.0), "context")
        self.assertEqual(benchtargets.verdict("lower", 1.0, None, None), "not measured")

    def test_a_median_on_the_right_side_is_not_enough(self):
        # The estimate alone would say met; the bootstrap interval straddles the threshold.
        declared = benchtargets.Declarations("latest")
        result = declared.measure("rev-1", a=[0.8, 0.9, 1.0, 1.05, 1.3, 1.4, 1.5], b=[1.0] * 7)
        self.assertLessEqual(result.estimate, 1.10)
        self.assertEqual(result.verdict, "inconclusive")

    def test_bootstrap_is_reproducible(self):
        declared = benchtargets.Declarations("latest")
        a, b = [1.0, 1.2, 0.9, 1.1, 1.05], [1.0, 0.98, 1.02, 1.01, 0.99]
        one, two = declared.measure("rev-16", a=a, b=b), declared.measure("rev-16", a=a, b=b)
        self.assertEqual((one.low, one.high), (two.low, two.high))
        self.assertLessEqual(one.low, one.estimate)
        self.assertLessEqual(one.estimate, one.high)

    def test_chart_orientation(self):
        declared = benchtargets.Declarations("latest")
        lower = declared.measure("rev-16", a=[2.0] * 5, b=[1.0] * 5)       # DaxPin twice as slow
        est, low, high, threshold = benchtargets.oriented(lower)
        self.assertAlmostEqual(est, 0.5)
        self.assertAlmostEqual(threshold, 1 / 1.10)
        higher = declared.measure("pin-tmpfs-c", pairs=[(2.0, 1.0)] * 5)    # DaxPin twice as fast
        self.assertAlmostEqual(benchtargets.oriented(higher)[0], 2.0)


if __name__ == "__main__":
    unittest.main()
