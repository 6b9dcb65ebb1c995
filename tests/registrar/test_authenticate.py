"""The registrar's Digest decision: the challenge, real client answers, and what it refuses."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from sipwire.auth import DigestAccount, DigestClient, digest_response
from sipwire.auth.nonce import NonceIssuer
from sipwire.message import Challenge as ChallengeField
from sipwire.message import Request, Response, parse_message
from sipwire.registrar.authenticate import (
    Authenticated,
    AuthOutcome,
    Challenge,
    challenge_headers,
    challenge_response,
    check_credentials,
    credentials_username,
    make_user,
)
from sipwire.registrar.model import User

SECRET = b"registrar secret, 32 bytes long!"
NOW = 1_700_000_000.0
REALM = "biloxi.com"
BOB = make_user("bob", "biloxi.com", "zanzibar")
CNONCE = "0a4f113b"


def wire(message: Request | Response) -> Request | Response:
    """Through bytes and the parser, as the server will see it."""
    return parse_message(bytes(message))


def register(uri: str = "sip:biloxi.com") -> Request:
    text = (
        f"REGISTER {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7\r\n"
        "Max-Forwards: 70\r\n"
        "To: Bob <sip:bob@biloxi.com>\r\n"
        "From: Bob <sip:bob@biloxi.com>;tag=456248\r\n"
        "Call-ID: 843817637684230@998sdasdh09\r\n"
        "CSeq: 1826 REGISTER\r\n"
        "Contact: <sip:bob@192.0.2.4>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def answered(
    username: str = "bob",
    password: str = "zanzibar",
    *,
    issuer: NonceIssuer | None = None,
    uri: str = "sip:biloxi.com",
    realm: str = REALM,
    keep: Callable[[str], bool] = lambda line: True,
) -> Request:
    """A REGISTER answered by the real DigestClient against our challenge."""
    issuer = issuer or NonceIssuer(SECRET)
    request = register(uri)
    challenge = wire(challenge_response(request, realm=realm, issuer=issuer, now=NOW))
    assert isinstance(challenge, Response) and challenge.status == 401
    lines = [v for v in challenge.headers.get_all("WWW-Authenticate") if keep(v)]
    challenge.headers.remove("WWW-Authenticate")
    for line in lines:
        challenge.headers.add("WWW-Authenticate", line)
    client = DigestClient([DigestAccount(username, password)], new_cnonce=lambda: CNONCE)
    retry = client.authorize(request, challenge)
    assert retry is not None
    parsed = wire(retry)
    assert isinstance(parsed, Request)
    return parsed


def check(
    request: Request, user: User | None = BOB, *, now: float = NOW, realm: str = REALM
) -> AuthOutcome:
    return check_credentials(request, realm=realm, issuer=NonceIssuer(SECRET), now=now, user=user)


def authorization(request: Request) -> ChallengeField:
    (credentials,) = request.authorization
    return credentials


# -- the challenge -------------------------------------------------------------------------


def test_challenge_offers_sha256_then_md5() -> None:
    headers = challenge_headers(REALM, NonceIssuer(SECRET), NOW)
    assert [name for name, _ in headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    first, second = (ChallengeField.parse(value) for _, value in headers)
    assert (first.algorithm, second.algorithm) == ("SHA-256", "MD5")
    for challenge in (first, second):
        assert challenge.realm == REALM and challenge.qop_options == ["auth"]
        assert not challenge.stale
    assert first.nonce == second.nonce
    stale = challenge_headers(REALM, NonceIssuer(SECRET), NOW, stale=True)
    assert all("stale=true" in value for _, value in stale)


def test_challenge_response_is_a_401_with_a_to_tag() -> None:
    response = challenge_response(register(), realm=REALM, issuer=NonceIssuer(SECRET), now=NOW)
    assert response.status == 401 and response.to.tag
    assert len(response.headers.get_all("WWW-Authenticate")) == 2


# -- real answers --------------------------------------------------------------------------


def test_digest_client_answer_is_authenticated() -> None:
    retry = answered()
    credentials = authorization(retry)
    assert credentials.algorithm == "SHA-256"  # the client took the strongest offer
    outcome = check(retry)
    assert isinstance(outcome, Authenticated)
    assert (outcome.username, outcome.nonce, outcome.nc) == ("bob", credentials.nonce, 1)
    assert outcome.expires_at == NOW + 300
    assert credentials_username(retry, REALM) == "bob"


def test_md5_answer_is_authenticated() -> None:
    retry = answered(keep=lambda line: "MD5" in line)
    assert authorization(retry).algorithm == "MD5"
    assert isinstance(check(retry), Authenticated)


def test_request_without_credentials_is_challenged() -> None:
    assert check(register()) == Challenge(stale=False)
    assert credentials_username(register(), REALM) is None


# -- unknown user and wrong password look the same -----------------------------------------


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every hashlib.new() the Digest code makes, by name."""
    calls: list[str] = []
    real = hashlib.new

    def counting(name: str, data: bytes = b"", **kwargs: bool) -> hashlib._Hash:
        calls.append(name)
        return real(name, data, **kwargs)

    monkeypatch.setattr(hashlib, "new", counting)  # what Algorithm.hash calls
    yield calls


def _answer_and_challenge(request: Request, user: User | None) -> tuple[AuthOutcome, bytes]:
    outcome = check(request, user)
    assert isinstance(outcome, Challenge)
    issuer = NonceIssuer(SECRET)  # a fresh issuer: both challenges get the same nonce
    response = challenge_response(request, realm=REALM, issuer=issuer, now=NOW, stale=outcome.stale)
    return outcome, bytes(response)


def test_wrong_password_and_unknown_user_are_indistinguishable(hash_calls: list[str]) -> None:
    wrong_password = answered("bob", "guess")
    unknown_user = answered("mallory", "guess")

    hash_calls.clear()
    outcome_wrong, bytes_wrong = _answer_and_challenge(wrong_password, BOB)
    work_wrong = list(hash_calls)
    hash_calls.clear()
    outcome_unknown, bytes_unknown = _answer_and_challenge(unknown_user, None)
    work_unknown = list(hash_calls)

    assert outcome_wrong == outcome_unknown == Challenge(stale=False)
    # Same status, same headers, same fresh challenge (same secret, same instant).
    assert bytes_wrong == bytes_unknown
    # The same hashing: the unknown user is checked against a dummy HA1.
    assert work_wrong == work_unknown and len(work_wrong) >= 2


def test_user_looked_up_under_another_name_counts_as_unknown() -> None:
    carol = make_user("carol", "biloxi.com", "zanzibar")
    assert check(answered(), carol) == Challenge(stale=False)
    assert check(answered(), make_user("bob", "atlanta.com", "zanzibar")) == Challenge()


# -- nonces: stale and forged --------------------------------------------------------------


def test_stale_nonce_with_right_digest_is_challenged_as_stale() -> None:
    assert check(answered(), now=NOW + 301) == Challenge(stale=True)


def test_stale_nonce_never_reveals_the_user() -> None:
    # RFC 7616 §3.3: stale only "with a valid digest for that nonce".
    assert check(answered("bob", "guess"), now=NOW + 301) == Challenge(stale=False)
    assert check(answered("mallory", "guess"), None, now=NOW + 301) == Challenge(stale=False)


def test_forged_nonce_is_challenged_not_stale() -> None:
    forged = answered(issuer=NonceIssuer(b"another secret, not the registrar"))
    assert check(forged) == Challenge(stale=False)
    assert check(forged, now=NOW + 10**6) == Challenge(stale=False)


def test_nonce_of_another_realm_is_refused() -> None:
    # Our nonce issued for atlanta.com, answered with realm biloxi.com: the HMAC binds the realm.
    issuer = NonceIssuer(SECRET)
    nonce = issuer.issue(NOW, "atlanta.com")
    request = register()
    response = digest_response(
        algorithm="SHA-256",
        username="bob",
        realm=REALM,
        password="zanzibar",
        method="REGISTER",
        uri="sip:biloxi.com",
        nonce=nonce,
        nc=1,
        cnonce=CNONCE,
        qop="auth",
    )
    request.headers.add(
        "Authorization",
        f'Digest username="bob", realm="{REALM}", nonce="{nonce}", uri="sip:biloxi.com", '
        f'response="{response}", algorithm=SHA-256, cnonce="{CNONCE}", qop=auth, nc=00000001',
    )
    assert check(request) == Challenge(stale=False)


# -- realm, uri, algorithm, qop, username --------------------------------------------------


def test_credentials_for_another_realm_are_ignored() -> None:
    retry = answered(realm="atlanta.com")
    assert check(retry) == Challenge(stale=False)
    assert credentials_username(retry, REALM) is None


def test_uri_must_be_the_request_uri() -> None:
    retry = answered()
    retry.uri = "sip:registrar.biloxi.com"
    assert check(retry) == Challenge(stale=False)


def test_uri_is_compared_as_a_uri() -> None:
    retry = answered(uri="sip:BILOXI.com")
    assert authorization(retry).params["uri"] == "sip:BILOXI.com"
    retry.uri = "sip:biloxi.com"  # §19.1.4: the host compares case-insensitively
    assert isinstance(check(retry), Authenticated)


def _replace_param(request: Request, old: str, new: str) -> Request:
    (line,) = request.headers.get_all("Authorization")
    request.headers.set("Authorization", line.replace(old, new))
    return request


def test_algorithm_not_offered_is_refused() -> None:
    retry = answered()
    params = authorization(retry).params
    response = digest_response(
        algorithm="SHA-512-256",
        username="bob",
        realm=REALM,
        password="zanzibar",
        method="REGISTER",
        uri="sip:biloxi.com",
        nonce=params["nonce"],
        nc=1,
        cnonce=CNONCE,
        qop="auth",
    )
    _replace_param(retry, params["response"], response)
    _replace_param(retry, "algorithm=SHA-256", "algorithm=SHA-512-256")
    assert check(retry) == Challenge(stale=False)  # a right digest, but not what we offered
    outcome = check_credentials(
        retry,
        realm=REALM,
        issuer=NonceIssuer(SECRET),
        now=NOW,
        user=BOB,
        algorithms=("SHA-512-256",),
    )
    assert isinstance(outcome, Authenticated)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("qop=auth", "qop=auth-int"),
        ("nc=00000001", "nc=00000000"),
        ("nc=00000001", "nc=1"),
        (f'cnonce="{CNONCE}"', 'cnonce=""'),
        ('username="bob"', 'username="Bob"'),
        ("Digest ", "Digest userhash=true, "),
        ('response="', 'xresponse="'),
    ],
)
def test_credential_parameters_are_checked(old: str, new: str) -> None:
    retry = _replace_param(answered(), old, new)
    assert check(retry) == Challenge(stale=False)


def test_tampered_response_is_refused() -> None:
    retry = answered()
    response = authorization(retry).params["response"]
    flipped = ("0" if response[0] != "0" else "1") + response[1:]
    assert check(_replace_param(retry, response, flipped)) == Challenge(stale=False)


def test_same_credentials_again_are_left_to_the_store() -> None:
    # Replay protection is store.use_nonce_count(nonce, nc): the decision here is pure.
    retry = answered()
    first, second = check(retry), check(retry)
    assert isinstance(first, Authenticated) and first == second


def test_make_user_keeps_only_ha1_for_every_algorithm() -> None:
    user = make_user("bob", "Biloxi.COM", "zanzibar")
    assert user.domain == "biloxi.com"
    assert set(user.ha1) >= {"MD5", "SHA-256"}
    assert user.ha1["MD5"] == hashlib.md5(b"bob:biloxi.com:zanzibar").hexdigest()
    assert "zanzibar" not in repr(user)
