"""`cli_modules(*args)`: run `gradcli ARGS` in a fresh interpreter and say which heavy modules it
imported (numpy, rich, lark, the numpy rules, the engine), for the cold-start tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs the CLI in a fresh interpreter and reports, after it, which heavy modules were imported.
WRAPPER = """
import sys
from gradcli.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
heavy = sorted(m for m in ("numpy", "rich", "lark", "gradcli.rules", "gradcli.engine")
               if m in sys.modules)
sys.stderr.write("\\nLOADED " + " ".join(heavy) + f" EXIT {code}\\n")
"""


def cli_modules(*args: str) -> tuple[str, list[str], int]:
    """stdout, the heavy modules loaded, and the exit code of `gradcli ARGS` in a new process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    m = re.search(r"LOADED ?(.*) EXIT (\d+)", out.stderr)
    assert m, out.stderr
    return out.stdout, m.group(1).split(), int(m.group(2))
