#!/usr/bin/env python3
"""Runs commands a number of times and prints, side by side, the median wall time and the
largest resident set size of each. Usage: measure.py RUNS LABEL=COMMAND [LABEL=COMMAND ...]
(COMMAND runs through /bin/sh; its output is discarded)."""
import os
import statistics
import subprocess
import sys
import time


def run(command):
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        process = subprocess.Popen(["/bin/sh", "-c", command], stdout=null, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        error = process.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"command failed ({status}): {command}\n{error}")
    return elapsed, usage.ru_maxrss  # KiB on Linux


def main():
    runs = int(sys.argv[1])
    rows = []
    for spec in sys.argv[2:]:
        label, command = spec.split("=", 1)
        results = [run(command) for _ in range(runs)]
        rows.append((label, statistics.median(r[0] for r in results), max(r[1] for r in results)))
    width = max(len(r[0]) for r in rows)
    print(f"  {'':{width}}  {'median s':>10}  {'max RSS MiB':>11}")
    for label, seconds, rss in rows:
        print(f"  {label:{width}}  {seconds:10.3f}  {rss / 1024:11.1f}")


if __name__ == "__main__":
    main()
