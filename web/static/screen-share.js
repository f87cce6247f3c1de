// @ts-check
// Screen sharing: getDisplayMedia, sent to every peer as a second video track (peers.js adds
// a transceiver of its own for it, so receivers tell it apart from the camera).

export const canShareScreen = Boolean(navigator.mediaDevices?.getDisplayMedia);

/**
 * Ask the person what to share. Resolves with {track, stream}, or null when they cancelled.
 * @param {() => void} onEnded  the browser's own "Stop sharing" (or the window closed)
 */
export async function pickScreen(onEnded) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: false,
    });
  } catch (error) {
    if (error.name === "NotAllowedError" || error.name === "AbortError") return null; // cancelled
    throw error;
  }
  const [track] = stream.getVideoTracks();
  // Text and documents: keep them sharp rather than smooth.
  if ("contentHint" in track) track.contentHint = "detail";
  track.addEventListener("ended", onEnded, { once: true });
  return { track, stream };
}
