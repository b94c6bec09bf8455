"""Screenshots of the pilot page and the completion report for docs/completion.md.

    python benchmarks/docs_screenshots.py            # writes docs/images/pilot-page.png, report-page.png, report-components.png

Runs `asymsense pilot movielens-100k` and `asymsense complete movielens-100k --seed 0 --features`
as a user would (subprocesses, timed: the pilot's wall-clock time is printed,
with the machine's core count and load average), then photographs the pages in
headless Chromium (Debian's /usr/bin/chromium through Playwright; `apt-get
install -y chromium`, `pip install playwright`).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def shoot(page: Path, png: Path, height: int, heading: str | None = None) -> None:
    """A viewport of `page` from its top, or from the h2 whose text starts with `heading`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1000, "height": height})
        tab.goto(page.resolve().as_uri(), wait_until="load")
        if heading is not None:
            tab.evaluate("h => [...document.querySelectorAll('h2')].find(e => e.textContent.startsWith(h)).scrollIntoView()", heading)
        tab.screenshot(path=str(png), full_page=False)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "asymsense", "pilot", "movielens-100k", "--out", str(tmp / "pilot")], check=True)
        pilot_seconds = time.perf_counter() - started
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        pilot_cpu = child.ru_utime + child.ru_stime
        subprocess.run([sys.executable, "-m", "asymsense", "complete", "movielens-100k", "--out", str(tmp / "ml"), "--seed", "0", "--features"], check=True)
        shoot(tmp / "pilot" / "pilot.html", args.out / "pilot-page.png", 1250)
        shoot(tmp / "ml" / "report.html", args.out / "report-page.png", 1500)
        shoot(tmp / "ml" / "report.html", args.out / "report-components.png", 1500, heading="Leading components")
    print(f"asymsense pilot movielens-100k: {pilot_seconds:.1f} s wall clock, {pilot_cpu:.1f} s CPU, on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); "
          f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
