"""The report page as a browser draws it: headless Chromium loads a copy of the page with a
small script that measures it, and prints the measurements into the page's title.

Checked: every image decodes, no image is drawn at less than :data:`MIN_IMAGE_SCALE` of its
own width (smaller, a figure's text is too small to read), and the page body is no wider
than the window (wide tables scroll inside their own box). Chromium is Debian's
``chromium`` package; nothing here downloads.

``python -m saliencybench.page_check results/report.html`` prints the findings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WINDOW = (1280, 900)
MIN_IMAGE_SCALE = 0.5
# Flags for a machine without a network: no background connections, no first-run work.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
_PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images].map((image) => ({
    name: image.alt,
    loaded: image.complete && image.naturalWidth > 0,
    natural: image.naturalWidth,
    shown: image.getBoundingClientRect().width,
  }));
  const root = document.documentElement;
  document.title = "PAGECHECK" + JSON.stringify({
    images: images,
    pageWidth: root.scrollWidth,
    windowWidth: root.clientWidth,
    tables: document.querySelectorAll("table").length,
    boxed: document.querySelectorAll(".table-box > table").length,
  });
});
</script>
"""


class BrowserMissing(RuntimeError):
    """No Chromium on this machine."""


@dataclass
class PageCheck:
    """What the browser measured, and the problems found in it."""

    measured: dict
    problems: list[str]


def chromium() -> str:
    """The Chromium executable; BrowserMissing where there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing(
        "chromium is not installed (Debian: apt-get install chromium); `make test` installs it "
        "where it runs as root on Debian"
    )


def measure_page(page: str | Path, timeout: float = 120.0) -> dict:
    """Load a copy of ``page`` in headless Chromium and return the probe's measurements."""
    text = Path(page).read_text(encoding="utf-8")
    probed = text.replace("</body>", _PROBE + "</body>", 1)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "page.html"
        copy.write_text(probed, encoding="utf-8")
        done = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={Path(scratch) / 'profile'}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                copy.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    found = re.search(r"<title>PAGECHECK(.*?)</title>", done.stdout, re.DOTALL)
    if not found:
        raise RuntimeError(
            f"chromium printed no measurements (exit {done.returncode}): {done.stderr[-500:]}"
        )
    import html

    return json.loads(html.unescape(found.group(1)))


def check_page(page: str | Path) -> PageCheck:
    """Measure ``page`` and list what is wrong with it."""
    measured = measure_page(page)
    problems = []
    for image in measured["images"]:
        if not image["loaded"]:
            problems.append(f"image {image['name']} does not load")
        elif image["shown"] < MIN_IMAGE_SCALE * image["natural"]:
            scale = image["shown"] / image["natural"]
            problems.append(
                f"image {image['name']} is drawn at {scale:.0%} of its size "
                f"({image['natural']} px into {image['shown']:.0f} px): too small to read"
            )
    if measured["pageWidth"] > measured["windowWidth"]:
        problems.append(
            f"the page is {measured['pageWidth']} px wide in a {measured['windowWidth']} px "
            "window: something overflows sideways"
        )
    if measured["boxed"] != measured["tables"]:
        problems.append(
            f"{measured['tables'] - measured['boxed']} of {measured['tables']} tables are not "
            "in a scrolling box"
        )
    return PageCheck(measured, problems)


if __name__ == "__main__":
    import sys

    result = check_page(sys.argv[1] if len(sys.argv) > 1 else "results/report.html")
    images = result.measured["images"]
    print(f"{len(images)} images, {result.measured['tables']} tables")
    print("\n".join(result.problems) or "no problems")
    sys.exit(1 if result.problems else 0)
