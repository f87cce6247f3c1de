import pytest

from models.roles import Role
from server.tokens import LinkClaims, LinkSigner, TokenError

SECRET = "s" * 40
NOW = 1_800_000_000.0


def claims(**changes: object) -> LinkClaims:
    values: dict[str, object] = {
        "consult_id": "c_1",
        "participant_id": "p_1",
        "role": Role.PATIENT,
        "expires_at": int(NOW) + 3600,
        "token_id": "t_1",
    }
    values.update(changes)
    return LinkClaims(**values)  # type: ignore[arg-type]


def test_round_trip_keeps_every_claim() -> None:
    signer = LinkSigner(SECRET)
    original = claims(role=Role.CLINICIAN)
    assert signer.verify(signer.sign(original), now=NOW) == original


@pytest.mark.parametrize("role", list(Role))
def test_each_role_survives_signing(role: Role) -> None:
    signer = LinkSigner(SECRET)
    assert signer.verify(signer.sign(claims(role=role)), now=NOW).role is role


def test_expired_token_is_refused_with_its_own_code() -> None:
    signer = LinkSigner(SECRET)
    token = signer.sign(claims(expires_at=int(NOW) + 10))
    assert signer.verify(token, now=NOW + 9).consult_id == "c_1"
    with pytest.raises(TokenError) as refused:
        signer.verify(token, now=NOW + 10)
    assert refused.value.code == "expired_token"


def test_other_secret_does_not_verify() -> None:
    token = LinkSigner(SECRET).sign(claims())
    with pytest.raises(TokenError) as refused:
        LinkSigner("t" * 40).verify(token, now=NOW)
    assert refused.value.code == "invalid_token"


def test_tampered_payload_does_not_verify() -> None:
    signer = LinkSigner(SECRET)
    payload, signature = signer.sign(claims()).split(".")
    other_payload = signer.sign(claims(role=Role.PHARMACIST)).split(".")[0]
    with pytest.raises(TokenError):
        signer.verify(f"{other_payload}.{signature}", now=NOW)
    assert payload != other_payload


@pytest.mark.parametrize(
    "garbage", ["", ".", "abc", "a.b.c", "!!!.???", "x" * 5000, "eyJ2IjoxfQ.sig"]
)
def test_garbage_is_invalid_not_a_crash(garbage: str) -> None:
    with pytest.raises(TokenError) as refused:
        LinkSigner(SECRET).verify(garbage, now=NOW)
    assert refused.value.code == "invalid_token"


def test_signed_garbage_payload_is_invalid() -> None:
    signer = LinkSigner(SECRET)
    payload = "bm90IGpzb24"  # base64url of "not json"
    forged = f"{payload}.{signer._signature(payload)}"
    with pytest.raises(TokenError) as refused:
        signer.verify(forged, now=NOW)
    assert refused.value.code == "invalid_token"


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        LinkSigner("short")
