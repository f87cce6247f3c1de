"""A synthetic consult participant: aiortc media plus the Socket.IO signaling protocol.

Used by tests (a remote peer whose received frames can be counted), load tests (many
participants from one process) and the demo (a "patient" that is always there). It speaks
exactly the protocol in ``docs/protocol.md``:

- connect with the join token in the Socket.IO ``auth`` payload, WebSocket transport only;
- ``join`` with an acknowledgement, whose ``ice`` is the ``RTCConfiguration`` for every
  peer connection of this session (it is always used as given: see :func:`rtc_configuration`);
- the newcomer offers: on joining it offers to everyone its acknowledgement's roster lists,
  and it answers the offers of those who join after it, with one ``RTCPeerConnection`` per
  remote participant, sending a generated video track (moving bars) and a quiet tone, and
  counting the video frames it decodes from each remote. It never renegotiates itself
  (aiortc cannot roll back), so an offer can only collide with its first one: if both
  sides made a first offer, the polite side (lower id) answers on a fresh connection and
  the other ignores the incoming offer, as the browser client does.

Example::

    bot = SyntheticParticipant("http://127.0.0.1:8080", token, display_name="Demo patient")
    await bot.start()
    await bot.wait_for_frames(count=30)      # from any remote participant
    print(bot.frames_received)               # {"p_…": 30, ...}
    await bot.stop()

or ``python -m media.synthetic http://127.0.0.1:8080 <token or join link>``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import fractions
import logging
import math
import signal
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Mapping
from types import TracebackType
from typing import Any, cast

import socketio
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from media.ice import parse_candidate, rtc_configuration

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020


class SyntheticError(Exception):
    """The server refused the connection or the join.

    ``code`` is the protocol's error code (``invalid_token``, ``consult_ended``, ...) or
    ``connect_failed`` / ``join_timeout`` when the server did not answer usefully.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# -- configuration ---------------------------------------------------------------------------


def _ice_ufrag(sdp: str) -> str | None:
    """The first ``a=ice-ufrag`` of an SDP (all m-sections share it with BUNDLE)."""
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:") :].strip()
    return None


# -- generated media -------------------------------------------------------------------------


class MovingBarsTrack(MediaStreamTrack):
    """Video: a bright vertical bar and a horizontal band moving over a colour that drifts.

    Every frame differs, so encoders keep sending real data and a receiver's decoded frame
    count means something. Pure Python (no numpy), a few whole-plane byte operations a frame.
    """

    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: int = 15) -> None:
        super().__init__()
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError("width and height must be positive even numbers")
        if not 1 <= fps <= 60:
            raise ValueError("fps must be between 1 and 60")
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_sent = 0
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = self.frames_sent
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + index / self.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        frame = self._draw(index)
        frame.pts = index * VIDEO_CLOCK_RATE // self.fps
        frame.time_base = self._time_base
        self.frames_sent += 1
        return frame

    def _draw(self, index: int) -> VideoFrame:
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        luma, blue, red = frame.planes
        stride = luma.line_size
        bar_width = max(2, self.width // 10)
        bar_x = (index * max(1, self.width // (2 * self.fps))) % (self.width - bar_width)
        row = bytearray(b"\x40" * stride)
        row[bar_x : bar_x + bar_width] = b"\xeb" * bar_width
        band_height = max(2, self.height // 12)
        band_y = (index * max(1, self.height // (3 * self.fps))) % (self.height - band_height)
        band_row = bytes(b"\xc0" * stride)
        luma.update(
            bytes(row) * band_y
            + band_row * band_height
            + bytes(row) * (self.height - band_y - band_height)
        )
        hue = 2 * math.pi * (index % (self.fps * 10)) / (self.fps * 10)
        blue.update(bytes([128 + int(60 * math.cos(hue))]) * blue.buffer_size)
        red.update(bytes([128 + int(60 * math.sin(hue))]) * red.buffer_size)
        return frame


class ToneTrack(MediaStreamTrack):
    """Audio: a quiet 440 Hz tone, 48 kHz mono, 20 ms frames (pure Python, precomputed)."""

    kind = "audio"

    _period = array.array(
        "h",
        (
            int(1500 * math.sin(2 * math.pi * 440 * n / AUDIO_SAMPLE_RATE))
            for n in range(AUDIO_SAMPLE_RATE)
        ),
    ).tobytes()

    def __init__(self) -> None:
        super().__init__()
        self.frames_sent = 0
        self._samples = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)
        self._time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = self.frames_sent
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + index * AUDIO_PTIME - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        # One second holds exactly 50 frames, and 440 whole periods, so this loops cleanly.
        offset = (index * self._samples * 2) % len(self._period)
        frame.planes[0].update(self._period[offset : offset + self._samples * 2])
        frame.pts = index * self._samples
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.time_base = self._time_base
        self.frames_sent += 1
        return frame


# -- one remote participant ------------------------------------------------------------------


class _Peer:
    """The peer connection to one remote participant and its signaling inbox.

    Signals are handled strictly in arrival order by one worker task, so a candidate is
    never applied before the offer it belongs to has been set.
    """

    def __init__(self, owner: SyntheticParticipant, remote_id: str) -> None:
        self.owner = owner
        self.remote_id = remote_id
        self.pc: RTCPeerConnection | None = None
        self.remote_ufrag: str | None = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pending_candidates: list[RTCIceCandidate | None] = []
        # Their first offer collided with ours and we are the impolite side (see above).
        self.ignoring_offer = False
        self.tracks: list[MediaStreamTrack] = []
        self.receivers: set[asyncio.Task[None]] = set()
        self.worker = asyncio.create_task(self._run(), name=f"synthetic-peer-{remote_id}")

    async def _run(self) -> None:
        await self.owner._ready.wait()
        while True:
            message = await self.inbox.get()
            try:
                if "make_offer" in message:
                    await self._make_offer()
                elif "description" in message:
                    await self._on_description(message["description"])
                elif "candidate" in message:
                    await self._on_candidate(message["candidate"])
            except Exception:
                logger.exception("signal from %s could not be applied", self.remote_id)

    def _connection(self) -> RTCPeerConnection:
        if self.pc is None:
            pc = RTCPeerConnection(self.owner.rtc_configuration)
            pc.on("track", self._on_track)
            pc.on("connectionstatechange", self._on_state)
            self.pc = pc
        return self.pc

    def _add_tracks(self, pc: RTCPeerConnection) -> None:
        if not self.tracks:
            self.tracks = [
                MovingBarsTrack(self.owner.width, self.owner.height, self.owner.fps),
                ToneTrack(),
            ]
            for track in self.tracks:
                pc.addTrack(track)

    async def _make_offer(self) -> None:
        """The first offer to someone already present when we joined."""
        if self.pc is not None:
            return  # they offered first
        pc = self._connection()
        self._add_tracks(pc)
        # aiortc gathers all its candidates here and puts them in the SDP: no trickling.
        await pc.setLocalDescription(await pc.createOffer())
        await self._send_local_description(pc)

    async def _on_description(self, description: Mapping[str, Any]) -> None:
        kind = description.get("type")
        self.ignoring_offer = False
        if kind == "answer":
            if self.pc is not None and self.pc.signalingState == "have-local-offer":
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=str(description.get("sdp", "")), type="answer")
                )
                await self._apply_pending_candidates(self.pc)
            return
        if kind != "offer":
            # A rollback of the remote's own offer needs nothing from us.
            logger.debug("ignoring %s from %s", kind, self.remote_id)
            return
        if self.pc is not None and self.pc.signalingState == "have-local-offer":
            # Both made a first offer: the polite side (lower id) answers on a fresh
            # connection (below: new ICE credentials), the other ignores the incoming one.
            if self.owner.id > self.remote_id:
                self.ignoring_offer = True
                return
            await self._reset_connection()
        sdp = str(description.get("sdp", ""))
        ufrag = _ice_ufrag(sdp)
        if self.pc is not None and ufrag != self.remote_ufrag:
            # A new session from the same participant (their link reopened in another tab)
            # or an ICE restart, which aiortc does not support: start over with a fresh
            # connection.
            logger.info("new ICE credentials from %s: new peer connection", self.remote_id)
            await self._reset_connection()
        self.remote_ufrag = ufrag
        pc = self._connection()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self._add_tracks(pc)
        # aiortc gathers all its candidates here and puts them in the SDP: no trickling.
        await pc.setLocalDescription(await pc.createAnswer())
        await self._send_local_description(pc)
        await self._apply_pending_candidates(pc)

    async def _send_local_description(self, pc: RTCPeerConnection) -> None:
        local = pc.localDescription
        await self.owner._emit(
            "signal",
            {"to": self.remote_id, "description": {"type": local.type, "sdp": local.sdp}},
        )

    async def _apply_pending_candidates(self, pc: RTCPeerConnection) -> None:
        pending, self.pending_candidates = self.pending_candidates, []
        for candidate in pending:
            await self._add_candidate(pc, candidate)

    async def _on_candidate(self, init: Mapping[str, Any] | None) -> None:
        if self.ignoring_offer:
            return  # they belong to the offer we ignored
        candidate = None if init is None else parse_candidate(init)
        if self.pc is None or self.pc.remoteDescription is None:
            self.pending_candidates.append(candidate)
            return
        await self._add_candidate(self.pc, candidate)

    async def _add_candidate(
        self, pc: RTCPeerConnection, candidate: RTCIceCandidate | None
    ) -> None:
        if candidate is not None and candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        await pc.addIceCandidate(candidate)

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.create_task(self._consume(track))
        self.receivers.add(task)
        task.add_done_callback(self.receivers.discard)

    def _on_state(self) -> None:
        if self.pc is not None:
            state = self.pc.connectionState
            self.owner.connection_states[self.remote_id] = state
            logger.debug("connection to %s: %s", self.remote_id, state)

    async def _consume(self, track: MediaStreamTrack) -> None:
        """Decode every frame of a remote track (aiortc queues them unboundedly otherwise)."""
        counts = self.owner.frames_received if track.kind == "video" else self.owner.audio_received
        counts.setdefault(self.remote_id, 0)
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            counts[self.remote_id] += 1
            if track.kind == "video":
                self.owner._frame_arrived()

    async def _reset_connection(self) -> None:
        """Close the peer connection, its generated tracks and its receivers."""
        for task in list(self.receivers):
            task.cancel()
        for track in self.tracks:
            track.stop()
        self.tracks = []
        self.pending_candidates = []
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()
            self.owner.connection_states[self.remote_id] = "closed"

    async def close(self) -> None:
        """Stop handling signals from this participant and close the connection."""
        self.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker
        await self._reset_connection()


# -- the participant -------------------------------------------------------------------------


class SyntheticParticipant:
    """One consult participant driven by aiortc, for tests, load and the demo.

    After :meth:`start`: ``self_info`` (``{"id", "role", "display_name"}``), ``consult``,
    ``roster`` (the other participants present, by id), ``rtc_configuration`` (from the
    server's ``ice``), and as media flows ``frames_received`` / ``audio_received`` (decoded
    frames per remote participant id) and ``connection_states``. ``ended`` is set when the
    consult ends, the link is opened elsewhere, or the connection drops; ``end_reason``
    says which.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        display_name: str | None = None,
        width: int = 640,
        height: int = 480,
        fps: int = 15,
        force_relay: bool = False,
        timeout: float = 10.0,
        admission_timeout: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.display_name = display_name
        self.width = width
        self.height = height
        self.fps = fps
        self.force_relay = force_relay
        self.timeout = timeout
        self.admission_timeout = admission_timeout

        self.self_info: dict[str, Any] = {}
        self.consult: dict[str, Any] = {}
        self.roster: dict[str, dict[str, Any]] = {}
        self.rtc_configuration = RTCConfiguration(iceServers=[])
        self.frames_received: dict[str, int] = {}
        self.audio_received: dict[str, int] = {}
        self.connection_states: dict[str, str] = {}
        self.errors: list[dict[str, Any]] = []
        self.ended = asyncio.Event()
        self.end_reason: str | None = None

        self._sio: Any = socketio.AsyncClient(reconnection=False)
        self._peers: dict[str, _Peer] = {}
        self._ready = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._frame_tick = asyncio.Event()
        self._connect_error: Any = None
        self._stopping = False
        for event, handler in {
            "connect_error": self._on_connect_error,
            "disconnect": self._on_disconnect,
            "participant-joined": self._on_participant_joined,
            "participant-left": self._on_participant_left,
            "signal": self._on_signal,
            "replaced": self._on_replaced,
            "consult-ended": self._on_consult_ended,
            "error": self._on_error,
        }.items():
            self._sio.on(event, handler)

    @property
    def id(self) -> str:
        """This participant's id (``p_…``), known after :meth:`start`."""
        return str(self.self_info.get("id", ""))

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """Connect, join, offer to those present and answer those who come. Returns the
        ``join`` ack.

        Raises :class:`SyntheticError` when the connection or the join is refused.
        """
        try:
            await self._sio.connect(
                self.base_url,
                auth={"token": self.token},
                transports=["websocket"],
                wait_timeout=self.timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            code, message = "connect_failed", str(exc)
            error = self._connect_error
            if isinstance(error, Mapping):
                detail = error.get("data", error)
                if isinstance(detail, Mapping):
                    code = str(detail.get("code", code))
                    message = str(detail.get("message", message))
            raise SyntheticError(code, message) from exc

        # A synthetic participant stands in for a consenting person; as a patient it waits
        # in the waiting room until a pharmacist admits it (up to `admission_timeout`).
        payload: dict[str, Any] = {"consent": {"accepted": True}}
        if self.display_name is not None:
            payload["display_name"] = self.display_name
        admitted: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def on_admitted(data: Any = None) -> None:
            if not admitted.done():
                admitted.set_result(dict(data or {}))

        self._sio.on("admitted", on_admitted)
        try:
            ack = await self._sio.call("join", payload, timeout=self.timeout)
            if isinstance(ack, dict) and ack.get("ok") and ack.get("waiting"):
                ack = await asyncio.wait_for(admitted, self.admission_timeout)
        except (socketio.exceptions.TimeoutError, TimeoutError) as exc:
            await self._sio.disconnect()
            raise SyntheticError("join_timeout", "no join acknowledgement") from exc
        if not isinstance(ack, dict) or not ack.get("ok"):
            error = ack.get("error", {}) if isinstance(ack, dict) else {}
            await self._sio.disconnect()
            raise SyntheticError(
                str(error.get("code", "join_failed")), str(error.get("message", ack))
            )

        self.self_info = dict(ack.get("self") or {})
        self.consult = dict(ack.get("consult") or {})
        self.roster = {str(p["id"]): dict(p) for p in ack.get("roster") or [] if "id" in p}
        self.rtc_configuration = rtc_configuration(
            ack.get("ice") or {}, force_relay=self.force_relay
        )
        self._ready.set()
        # We are the newcomer to everyone present: we make the first offers.
        for remote_id in self.roster:
            self._peer(remote_id).inbox.put_nowait({"make_offer": True})
        return cast(dict[str, Any], ack)

    async def stop(self) -> None:
        """Leave the consult, close every peer connection and disconnect."""
        self._stopping = True
        if self._sio.connected:
            with contextlib.suppress(Exception):
                await self._sio.emit("leave", {})
                # The server closes the connection after `leave`; don't wait for ever.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._disconnected.wait(), 2)
        await self._close_all()
        # Also when the server already closed the connection: this closes the HTTP session.
        await self._sio.disconnect()

    async def __aenter__(self) -> SyntheticParticipant:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for_frames(
        self, remote_id: str | None = None, count: int = 1, timeout: float = 15.0
    ) -> int:
        """Wait until ``count`` video frames were decoded from ``remote_id`` (or from some
        remote participant, when ``None``); returns that count. Raises ``TimeoutError``."""

        def reached() -> bool:
            if remote_id is not None:
                return self.frames_received.get(remote_id, 0) >= count
            return any(n >= count for n in self.frames_received.values())

        async with asyncio.timeout(timeout):
            while not reached():
                self._frame_tick.clear()
                await self._frame_tick.wait()
        if remote_id is not None:
            return self.frames_received[remote_id]
        return max(self.frames_received.values())

    # -- internals ----------------------------------------------------------------------------

    async def _emit(self, event: str, data: Any) -> None:
        if self._sio.connected:
            await self._sio.emit(event, data)

    def _frame_arrived(self) -> None:
        self._frame_tick.set()

    def _peer(self, remote_id: str) -> _Peer:
        peer = self._peers.get(remote_id)
        if peer is None:
            peer = self._peers[remote_id] = _Peer(self, remote_id)
        return peer

    async def _close_peer(self, remote_id: str) -> None:
        peer = self._peers.pop(remote_id, None)
        if peer is not None:
            await peer.close()

    async def _close_all(self) -> None:
        await asyncio.gather(*(self._close_peer(rid) for rid in list(self._peers)))

    def _finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self.ended.set()

    # Socket.IO handlers: they only record and enqueue, never block.

    async def _on_connect_error(self, data: Any = None) -> None:
        self._connect_error = data

    async def _on_disconnect(self, *args: Any) -> None:
        self._disconnected.set()
        if not self._stopping:
            self._finish("disconnected")
            await self._close_all()

    async def _on_participant_joined(self, data: Any) -> None:
        participant = data.get("participant") if isinstance(data, dict) else None
        if isinstance(participant, dict) and "id" in participant:
            self.roster[str(participant["id"])] = participant

    async def _on_participant_left(self, data: Any) -> None:
        if isinstance(data, dict) and "participant_id" in data:
            remote_id = str(data["participant_id"])
            self.roster.pop(remote_id, None)
            await self._close_peer(remote_id)

    async def _on_signal(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("from"), str):
            return
        self._peer(data["from"]).inbox.put_nowait(data)

    async def _on_replaced(self, data: Any = None) -> None:
        self._finish("replaced")
        await self._close_all()

    async def _on_consult_ended(self, data: Any = None) -> None:
        self._finish("consult_ended")
        await self._close_all()

    async def _on_error(self, data: Any = None) -> None:
        logger.warning("server refused an event: %s", data)
        if isinstance(data, dict):
            self.errors.append(data)


# -- command line ----------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    token = args.token.rsplit("/c/", 1)[-1]
    bot = SyntheticParticipant(
        args.base_url,
        token,
        display_name=args.name,
        width=args.width,
        height=args.height,
        fps=args.fps,
        force_relay=args.force_relay,
    )
    try:
        ack = await bot.start()
    except SyntheticError as exc:
        print(f"could not join: {exc}", flush=True)
        return 1
    me = ack["self"]
    print(f"joined {ack['consult']['id']} as {me['role']} {me['id']} ({me['display_name']})")
    others = ", ".join(f"{p['role']} {p['id']}" for p in bot.roster.values()) or "nobody yet"
    print(f"present: {others}; waiting for offers (Ctrl-C to leave)", flush=True)

    # Ctrl-C / SIGTERM end the loop below, so that `stop` (leave, close) runs uncancelled.
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted.set)
    try:
        while not (bot.ended.is_set() or interrupted.is_set()):
            waiters = [asyncio.ensure_future(e.wait()) for e in (bot.ended, interrupted)]
            await asyncio.wait(waiters, timeout=args.interval, return_when=FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            counts = ", ".join(
                f"{rid}: {n} video frames ({bot.connection_states.get(rid, '?')})"
                for rid, n in sorted(bot.frames_received.items())
            )
            print(f"received: {counts or 'nothing yet'}", flush=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await bot.stop()
    print(f"ended: {bot.end_reason or 'left'}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m media.synthetic",
        description="Join a consult as a synthetic participant (generated video and audio).",
    )
    parser.add_argument("base_url", help="server origin, e.g. http://127.0.0.1:8080")
    parser.add_argument("token", help="join token, or a whole join link …/c/<token>")
    parser.add_argument("--name", default=None, help="display name for this consult")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between reports")
    parser.add_argument(
        "--force-relay", action="store_true", help="use only TURN, whatever the server says"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
