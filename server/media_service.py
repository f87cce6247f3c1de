"""The server's side of the media plane (signaling's `MediaService`): ICE servers with TURN
credentials, what each role's client may do, and the pre-join network probe."""

from __future__ import annotations

from collections.abc import Callable

from media.probe import ProbeService
from models import panel
from models.roles import Action, Role, is_allowed
from server.config import Config
from server.ice import ice_configuration
from signaling.backend import (
    ClientSettings,
    IceConfiguration,
    Identity,
    ProbeThresholds,
    SessionDescription,
)


class ServerMedia:
    def __init__(self, config: Config, clock: Callable[[], float], probes: ProbeService) -> None:
        self._config = config
        self._clock = clock
        self._probes = probes

    def ice_configuration(self, participant_id: str) -> IceConfiguration:
        return ice_configuration(self._config.ice, participant_id, now=self._clock())

    def client_settings(self, role: str) -> ClientSettings:
        probe = self._config.probe
        may_share = is_allowed(
            Role(role),
            Action.SHARE_SCREEN,
            patient_may_share_screen=self._config.consult.patient_may_share_screen,
        )
        return ClientSettings(
            may={action.value: is_allowed(Role(role), action) for action in Action}
            | {
                Action.SHARE_SCREEN.value: may_share,
                "admit": role in self._config.consult.admit_roles,
            },
            panel_schema=panel.schema(),
            probe=ProbeThresholds(
                max_rtt_ms=probe.max_rtt_ms,
                max_loss_percent=probe.max_loss_percent,
                min_kbps=probe.min_kbps,
            ),
            reconnect_grace_seconds=self._config.consult.reconnect_grace_seconds,
        )

    async def probe_answer(
        self, identity: Identity, offer: SessionDescription
    ) -> SessionDescription:
        ice = self.ice_configuration(identity.participant_id).wire()
        answer = await self._probes.answer(offer.wire(), ice)
        return SessionDescription(type=answer["type"], sdp=answer["sdp"])
