"""axe-core (from npm, web/node_modules) run inside a page: the serious and critical
accessibility violations of what the page shows now."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"

_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
}"""


# Transitions and other finite animations end (or are cancelled); a looping one is left.
_SETTLED = """() => Promise.all(document.getAnimations()
  .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity)
  .map((a) => a.finished.catch(() => null)))"""


@cache
def _source() -> str:
    return AXE.read_text()


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """Evaluated through the DevTools protocol, so the page's CSP (no inline scripts) does
    not stand in the way, and nothing is added to the page itself."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(_source())
    # A colour halfway through a transition is no colour anyone reads.
    await page.evaluate(_SETTLED)
    violations: list[dict[str, Any]] = await page.evaluate(_RUN)
    return violations
