"""Every model and baseline on every embedded dataset, walk-forward: one table (skill,
significance, compute), JSON and HTML under benchmarks/results/suite/. Same as `tidewise bench`.

    .venv/bin/python benchmarks/suite.py [--models all] [--test-years 6] [--datasets msft,googl,sp500]
"""
import sys

from tidewise.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", *sys.argv[1:]]))
