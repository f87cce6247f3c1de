import base64
import hashlib
import hmac

from server.config import IceSettings
from server.ice import ice_configuration, turn_credentials


def test_turn_credentials_follow_coturn_use_auth_secret() -> None:
    username, password = turn_credentials("sekret", "p_1", now=1000.0, ttl_seconds=600)
    assert username == "1600:p_1"
    expected = hmac.new(b"sekret", b"1600:p_1", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


def test_default_configuration_names_no_server() -> None:
    assert ice_configuration(IceSettings(), "p_1", now=0).wire() == {
        "iceServers": [],
        "iceTransportPolicy": "all",
    }


def test_relay_configuration_has_stun_and_turn() -> None:
    settings = IceSettings(
        stun_urls=["stun:127.0.0.1:3478"],
        turn_urls=["turn:127.0.0.1:3478?transport=udp"],
        turn_secret="sekret",
        turn_ttl_seconds=120,
        transport_policy="relay",
    )
    config = ice_configuration(settings, "p_9", now=50).wire()
    assert config["iceTransportPolicy"] == "relay"
    stun, turn = config["iceServers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    assert turn["username"] == "170:p_9"
