"""Take docs/images/demo-web.png: start `siliconlab demo --web`, answer one real review in headless Chromium.

Usage: python scripts/demo_screenshot.py [OUT.png] [extra `siliconlab demo` options...]
Needs the system `chromium` (Debian package) and playwright; the PNG is palette-quantized to stay small.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]  # fmt: skip


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/demo-web.png")
    command = [sys.executable, "-m", "siliconlab", "demo", "--web", "--port", "0", "-s", "sentiment", "-s", "spam",
               "-s", "chat", "-s", "search", *sys.argv[2:]]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in server.stderr:
            print(line.rstrip(), file=sys.stderr)
            if line.startswith("demo page on "):
                url = line.split()[3]
                break
        if url is None:
            raise SystemExit("the demo did not start")
        shoot(url, out)
    finally:
        server.terminate()
        server.wait(timeout=30)


def shoot(url: str, out: Path) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#sentiment-input textarea").fill("An absolutely wonderful film. I loved every minute of it.")
        page.locator("#sentiment-submit").click()
        page.wait_for_function("() => document.querySelector('#sentiment-status').innerText.startsWith('done')")
        page.wait_for_timeout(800)
        raw = out.with_suffix(".raw.png")
        page.screenshot(path=str(raw), full_page=True)
        browser.close()
    Image.open(raw).convert("RGB").quantize(colors=64).save(out, optimize=True)
    raw.unlink()
    print(f"{out}: {out.stat().st_size // 1024} kB")


if __name__ == "__main__":
    main()
