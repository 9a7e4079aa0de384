"""
The benchmark's command line: it starts (every module it is split into
imports), takes exactly the options its README documents, and refuses a size
it cannot read with one sentence. Running it is not a test: it takes minutes
and its numbers depend on the machine.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def benchmark(*args):
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "upload_throughput.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_exactly_the_options_the_readme_documents():
    done = benchmark("--help")
    assert done.returncode == 0, done.stderr
    offered = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", done.stdout)) - {"--help"}
    readme = (BENCHMARKS / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `--"))
    documented = set(re.findall(r"--[a-z][a-z-]*", table))
    assert offered == documented


def test_a_size_it_cannot_read_is_refused_in_one_sentence():
    done = benchmark("--size", "12 parsecs")
    assert done.returncode == 2
    assert "'12 parsecs' is not a size such as 1GiB, 8MiB or 500MB" in done.stderr
    assert "Traceback" not in done.stderr
