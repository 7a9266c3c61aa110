"""The HTML report in a real headless Chromium: no console errors, every figure present and non-empty, no
sideways scrolling; a full-page screenshot is kept for people to look at.

Drives Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`: NUL-separated JSON on fds 3/4),
so it needs no websocket client, no port and no extra package. Skipped only when no chromium binary exists;
CI installs Debian's `chromium`. Set MIXLAW_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from report_fixtures import add_validation, write_results_dir

from mixlaw.cli.main import main

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (CI installs Debian's chromium package)"
)
WIDTH = 1100

# Per figure: loaded, natural size, and the share of pixels that are not white (drawn on a canvas).
INSPECT = """JSON.stringify({
  figures: [...document.images].map(img => {
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data; let ink = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] < 235 || px[i+1] < 235 || px[i+2] < 235) ink++;
    return {name: img.dataset.figure, alt: img.alt, complete: img.complete, width: img.naturalWidth,
            height: img.naturalHeight, shown: img.getBoundingClientRect().width, ink: ink / (px.length / 4)};
  }),
  scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
  scripts: document.scripts.length, title: document.title
})"""


def _high(fd: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Chromium:
    """A minimal DevTools-protocol client over --remote-debugging-pipe."""

    def __init__(self, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Child ends above fd 10, so moving them to fds 3 and 4 cannot clobber one with the other.
        to_child_r, from_child_w = (_high(fd) for fd in (to_child_r, from_child_w))

        # The protocol wants fd 3 (commands in) and fd 4 (replies out); a tiny launcher moves the pipe ends there.
        launcher = f"import os, sys; os.dup2({to_child_r}, 3); os.dup2({from_child_w}, 4); os.execv(sys.argv[1], sys.argv[1:])"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                launcher,
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                f"--window-size={WIDTH},900",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_child_r, from_child_w),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int = WIDTH, height: int = 900) -> str:
        """A new page at `url` with console and log capture on; returns the session id once loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired")
        return session

    def evaluate(self, expression: str, session: str):
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, session: str, path: Path, width: int = WIDTH, height: float | None = None) -> None:
        """The page from the top: `height` CSS px of it (None: the whole page)."""
        size = self.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height or size["height"], "scale": 1},
            },
            session=session,
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def problems(self) -> list[str]:
        """Console errors/warnings, uncaught exceptions and failed loads seen so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                out.append(
                    "console." + params["type"] + ": " + " ".join(str(a.get("value")) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                out.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                out.append("log: " + params["entry"].get("text", ""))
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def _keep(path: Path) -> None:
    target = os.environ.get("MIXLAW_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_harness_catches_console_errors(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>x</title></head><body>'
        '<script>console.error("boom"); undefined_function();</script></body></html>'
    )
    browser.open(page.as_uri())
    problems = browser.problems()
    assert any("boom" in p for p in problems) and any("exception" in p for p in problems), problems


def test_report_in_chromium(browser, tmp_path):
    results = write_results_dir(tmp_path / "results")
    assert main(["report", str(results), "--quiet"]) == 0
    report = results / "report.html"
    session = browser.open(report.as_uri())
    page = browser.evaluate(INSPECT, session)
    page = json.loads(page)
    screenshot = tmp_path / "report-screenshot.png"
    browser.screenshot(session, screenshot)
    _keep(screenshot)

    assert browser.problems() == []
    names = [f["name"] for f in page["figures"]]
    assert names == ["mixture", "cv_scatter", "slices", "ternary", "step_law", "size_law", "optimum"]
    for figure in page["figures"]:
        assert figure["complete"] and figure["width"] > 300 and figure["height"] > 150, figure
        assert figure["alt"], figure
        assert 0.02 < figure["ink"] < 0.9, figure  # drawn, not blank, not a solid block
        assert figure["shown"] <= WIDTH, figure
    assert page["scrollWidth"] <= page["clientWidth"], "the page scrolls sideways"
    assert page["scripts"] == 0
    assert screenshot.stat().st_size > 50_000


# Top and bottom (CSS px from the top of the page) of what must be in the first screen.
FIRST_SCREEN = """JSON.stringify(Object.fromEntries(
  [['verdict', '#verdict'], ['table', '#mixture-table'], ['chart', 'img[data-figure=mixture]'],
   ['validation', 'img[data-figure=validation]'], ['diagnostics', '#diagnostics']].map(([k, q]) => {
    const e = document.querySelector(q); if (!e) return [k, null];
    const r = e.getBoundingClientRect(); return [k, {top: r.top + scrollY, bottom: r.bottom + scrollY}];
  })))"""


def test_answer_is_in_the_first_screen(browser, tmp_path):
    """A `mixlaw run`-like folder at 1400 x 900: verdict, mixture table and the validation figure are fully
    visible without scrolling; the diagnostics start below them."""
    results = add_validation(
        write_results_dir(tmp_path / "results"),
        {
            "verdict": "recommend",
            "reason": "P(beats baseline) 0.97",
            "p_beats_baseline": 0.97,
            "gain": {"value": 0.004, "lo": 0.001, "hi": 0.008},
        },
    )
    assert main(["report", str(results), "--quiet", "--formats", "none"]) == 0
    session = browser.open((results / "report.html").as_uri(), width=1400, height=900)
    boxes = json.loads(browser.evaluate(FIRST_SCREEN, session))
    screenshot = tmp_path / "report-first-screen.png"
    browser.screenshot(session, screenshot, width=1400, height=900)
    _keep(screenshot)
    assert browser.problems() == []
    for name in ("verdict", "table", "chart", "validation"):
        assert boxes[name] is not None, name
        assert 0 <= boxes[name]["top"] and boxes[name]["bottom"] <= 900, (name, boxes[name])
    assert boxes["diagnostics"]["top"] > boxes["validation"]["bottom"]
    text = browser.evaluate("document.querySelector('#verdict').innerText", session)
    assert "Recommend" in text and "P(beats baseline)" in text
