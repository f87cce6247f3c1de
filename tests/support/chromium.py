"""Debian's Chromium, headless, as every browser test and benchmark here launches it.

Playwright's own browser download cannot work on this network; its driver runs this binary.
"""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("MTM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    # Three fake cameras (and three microphones, three speakers) to switch between. Chromium
    # 156's fake_device_1 delivers Y16 (depth) frames that a peer connection never encodes;
    # fake_device_0 (I420, the default) and fake_device_2 (MJPEG) both send video.
    "--use-fake-device-for-media-stream=device-count=3",
    "--use-fake-ui-for-media-stream",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    # Headless tabs must keep decoding and sending even when not focused.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
]
