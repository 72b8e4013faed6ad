"""Make the README's pictures with the commands the README shows (run from the repository root):

    python docs/pictures.py

descend --plot needs matplotlib (gradcli[plot]); the report's circuit needs Graphviz's dot; the
screenshot needs Playwright's Python package and Debian's chromium (no browser download).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DOCS = Path(__file__).resolve().parent
COMMANDS = [
    ["gradcli", "descend", "(1-x)^2 + 100*(y-x^2)^2", "--at", "x=-1.2,y=1", "--lr", "0.001",
     "--steps", "2000", "--plot", "docs/descend-path.svg"],
    ["gradcli", "descend", "x^2 + 10*y^2", "--at", "x=-4,y=1", "--compare", "sgd,momentum,adam",
     "--plot", "docs/descend-compare.png"],
    ["gradcli", "eval", "samples/neuron.grad", "--at", "w0=2,x0=-1,w1=-3,x1=-2,w2=-3",
     "--format", "html", "-o", "docs/neuron-report.html"],
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    for cmd in COMMANDS:
        subprocess.run(cmd, check=True, cwd=DOCS.parent, stdout=subprocess.DEVNULL)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto((DOCS / "neuron-report.html").as_uri())
        page.hover('.circuit g.node[data-node="8"]')  # the hover: node `dot` and its row
        page.screenshot(path=str(DOCS / "neuron-report.png"), full_page=False,
                        clip={"x": 0, "y": 300, "width": 1000, "height": 900})
        browser.close()


if __name__ == "__main__":
    main()
