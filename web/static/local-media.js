// The local camera and microphone. A consult must stay joinable without them (receive-only),
// so every failure ends up as a plain-language message rather than an exception.

const CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true },
  // Modest resolution: in a full mesh every participant uploads one copy per remote peer.
  video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } },
};

const JOIN_ANYWAY = "You can still join to see and hear the others.";

// Errors where one kind of device may still work on its own (no camera, mic busy, ...).
const PARTIAL_FAILURES = new Set(["NotFoundError", "OverconstrainedError", "NotReadableError"]);

/**
 * Ask for microphone and camera.
 * @returns {Promise<{stream: MediaStream|null, problem: string|null}>}
 */
export async function openLocalMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: null, problem: `This browser cannot use a camera on this page. ${JOIN_ANYWAY}` };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(CONSTRAINTS), problem: null };
  } catch (error) {
    if (!PARTIAL_FAILURES.has(error.name)) return { stream: null, problem: describe(error) };
    return (await openOneKind()) ?? { stream: null, problem: describe(error) };
  }
}

// A laptop without a camera (or with a busy microphone) can still take part halfway.
async function openOneKind() {
  const fallbacks = [
    ["audio", "No camera is available: the others will hear you but not see you."],
    ["video", "No microphone is available: the others will see you but not hear you."],
  ];
  for (const [kind, problem] of fallbacks) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ [kind]: CONSTRAINTS[kind] });
      return { stream, problem };
    } catch {
      // This kind is unavailable too; try the next one.
    }
  }
  return null;
}

function describe(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera and microphone access is blocked. " +
        `${JOIN_ANYWAY} To be seen and heard, allow access in your browser's site settings and reload this page.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No camera or microphone was found. ${JOIN_ANYWAY}`;
    case "NotReadableError":
    case "AbortError":
      return "Your camera or microphone could not start; another app may be using it. " +
        `Close that app and reload this page, or join without them. ${JOIN_ANYWAY}`;
    default:
      return `Your camera or microphone could not start. ${JOIN_ANYWAY}`;
  }
}

/** Tracks of one kind ("audio" | "video") in a stream that may be absent. */
export function tracksOf(stream, kind) {
  return stream ? stream.getTracks().filter((track) => track.kind === kind) : [];
}

/** Stop the camera and microphone so the browser's recording indicator goes off. */
export function stopLocalMedia(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}
