"""docs/cards/: the cards of a scripted teacher's session (tests/docs/session.py) as JSON and as pictures, drawn by
Microsoft's Adaptive Cards renderer (devtools/cards/render.js) in headless Chromium inside the loopback-only namespace.

Regenerate them all (after scripts/setup): `.venv/bin/python -m tests.docs.pictures`
"""

from __future__ import annotations

import asyncio
import html
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from tests.docs.session import Cards, teacher_session
from tests.playground.run_in_namespace import (
    ISOLATED_SCRIPT,
    NAMESPACE_UNAVAILABLE,
    REPO_ROOT,
    NamespaceUnavailableError,
)

CARDS_DIR = REPO_ROOT / "docs" / "cards"
RENDER_SCRIPT = REPO_ROOT / "devtools" / "cards" / "render.js"
RENDERER = REPO_ROOT / "devtools" / "node_modules" / "adaptivecards" / "package.json"
REGENERATE = ".venv/bin/python -m tests.docs.pictures"
NOISE = 48
"""A pixel differs visibly when a colour channel differs by more than this (text and shapes differ by 100–255)."""
# Headless Chromium with everything that calls home switched off (it runs in the namespace all the same).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--virtual-time-budget=20000",  # the page lays out after its fonts load: let it finish before dump or screenshot
)


class RenderError(RuntimeError):
    """Chromium or the renderer could not draw the cards (the message says why)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    pictures: dict[str, Image.Image]
    warnings: dict[str, list[str]]
    """The renderer's parse warnings per card (an element or property it does not know: Teams would not know it)."""


def missing_renderer() -> str | None:
    """Why the cards cannot be drawn on this machine, or None."""
    for program in ("node", "chromium", "unshare", "ip"):
        if shutil.which(program) is None:
            return f"`{program}` is not on PATH (scripts/setup installs it, Chromium only as root)"
    if not RENDERER.is_file():
        return "the Adaptive Cards renderer is not installed (devtools/node_modules): run scripts/setup"
    return None


def _chromium(work: Path, *options: str) -> str:
    """Run headless Chromium on work/page.html inside the loopback-only namespace; its standard output."""
    command = ["bash", str(ISOLATED_SCRIPT), "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile'}"]
    page = (work / "page.html").as_uri()
    done = subprocess.run(
        [*command, *options, page], cwd=work, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode == NAMESPACE_UNAVAILABLE and "isolated.sh: cannot" in done.stderr:
        raise NamespaceUnavailableError(done.stderr.strip())
    if done.returncode != 0:
        raise RenderError(f"chromium exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def _layout(dom: str) -> dict[str, Any]:
    """What render.js put in the page's title once it had laid the cards out."""
    title = dom[dom.find("<title>") + len("<title>") : dom.find("</title>")]
    try:
        return dict(json.loads(html.unescape(title)))
    except ValueError:
        raise RenderError(f"the page was not laid out; its title: {title[:300]!r}") from None


def render(cards: Cards) -> Rendered:
    """Draw every card: one page (render.js), measured by Chromium, then screenshotted at its size and cut up."""
    with tempfile.TemporaryDirectory(prefix="gradebot-cards-") as folder:
        work = Path(folder)
        (work / "cards.json").write_text(json.dumps(cards), encoding="utf-8")
        subprocess.run(["node", str(RENDER_SCRIPT), work / "cards.json", work / "page.html"], check=True, timeout=60)
        width, height = _layout(_chromium(work, "--window-size=800,600", "--dump-dom"))["size"]
        layout = _layout(_chromium(work, f"--window-size={width},{height}", "--dump-dom", "--screenshot"))
        with Image.open(work / "screenshot.png") as page:
            whole = page.convert("RGB")
    if whole.size != tuple(layout["size"]):
        raise RenderError(f"the screenshot is {whole.size}, the page {layout['size']}")
    pictures = {name: whole.crop((x, y, x + w, y + h)) for name, (x, y, w, h) in layout["boxes"].items()}
    return Rendered(pictures=pictures, warnings=layout["warnings"])


def differing_pixels(drawn: Image.Image, stored: Image.Image) -> int:
    """How many pixels differ visibly (more than anti-aliasing: Chromium draws form controls' edges ±40 per run)."""
    if drawn.size != stored.size:
        return drawn.width * drawn.height
    red, green, blue = ImageChops.difference(drawn.convert("RGB"), stored.convert("RGB")).split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return sum(largest.histogram()[NOISE + 1 :])


def stored_cards() -> Cards:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(CARDS_DIR.glob("*.json"))}


def write(cards: Cards, rendered: Rendered) -> None:
    """Make docs/cards/ hold exactly these cards and their pictures (a picture that looks the same stays as it was)."""
    CARDS_DIR.mkdir(parents=True, exist_ok=True)
    for old in [*CARDS_DIR.glob("*.json"), *CARDS_DIR.glob("*.png")]:
        if old.stem not in cards:
            old.unlink()
    for name, card in cards.items():
        (CARDS_DIR / f"{name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        picture = CARDS_DIR / f"{name}.png"
        if picture.is_file():
            with Image.open(picture) as stored:
                if differing_pixels(rendered.pictures[name], stored) == 0:
                    continue
        rendered.pictures[name].save(picture, optimize=True)


def main() -> int:
    reason = missing_renderer()
    if reason:
        print(f"cannot draw the cards: {reason}", file=sys.stderr)
        return 1
    started = time.monotonic()
    cards = asyncio.run(teacher_session())
    rendered = render(cards)
    if rendered.warnings:
        print(f"the renderer does not understand these cards: {json.dumps(rendered.warnings)}", file=sys.stderr)
        return 1
    write(cards, rendered)
    print(f"{len(cards)} cards in {CARDS_DIR.relative_to(REPO_ROOT)}/ ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
