"""The registrar's rules (RFC 3261 §10.3, RFC 3327, RFC 3608, RFC 5626), one rule per test."""

from __future__ import annotations

import dataclasses

import pytest

from sipwire.message import Address, Request, parse_message
from sipwire.registrar.model import Binding, BindingChange
from sipwire.registrar.policy import RegistrarPolicy
from sipwire.registrar.rules import (
    Plan,
    Rejection,
    binding_key,
    canonical_aor,
    check_register,
    ok_response,
    plan,
    register_realm,
    sip_date,
)
from sipwire.transport.address import Source

NOW = 1_700_000_000.0
POLICY = RegistrarPolicy(domains={"biloxi.com", "Registrar.Biloxi.com"})
SOURCE = Source("udp", "192.0.2.4", 5060, "198.51.100.1", 5060)
CALL_ID = "843817637684230@998sdasdh09"
AOR = "sip:bob@biloxi.com"
INSTANCE = "urn:uuid:00000000-0000-1000-8000-000a95a0e128"


def parse(text: str) -> Request:
    """A REGISTER written as in the RFCs: LF line ends, no Content-Length needed."""
    head = text.strip("\n").replace("\n", "\r\n")
    message = parse_message(f"{head}\r\nContent-Length: 0\r\n\r\n".encode())
    assert isinstance(message, Request)
    return message


def register(
    *lines: str,
    cseq: int = 1826,
    call_id: str = CALL_ID,
    uri: str = "sip:registrar.biloxi.com",
    to: str = AOR,
    via: str = "SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7",
) -> Request:
    """The REGISTER of §24.1 with ``lines`` (Contact, Expires ...) added."""
    extra = "".join(f"{line}\n" for line in lines)
    return parse(
        f"""
REGISTER {uri} SIP/2.0
Via: {via}
Max-Forwards: 70
To: Bob <{to}>
From: Bob <sip:bob@biloxi.com>;tag=456248
Call-ID: {call_id}
CSeq: {cseq} REGISTER
{extra}"""
    )


def binding(contact: str = "<sip:bob@192.0.2.4>", **fields: object) -> Binding:
    """A stored binding of bob, set by the REGISTER of CSeq 1826, an hour left."""
    values: dict[str, object] = {
        "aor": AOR,
        "contact": contact,
        "key": binding_key(contact),
        "expires_at": NOW + 3600,
        "call_id": CALL_ID,
        "cseq": 1826,
    }
    values.update(fields)
    return Binding(**values)  # type: ignore[arg-type]


def run(
    request: Request,
    current: list[Binding] | None = None,
    *,
    policy: RegistrarPolicy = POLICY,
    auth_user: str | None = "bob",
    source: Source = SOURCE,
) -> Plan | Rejection:
    return plan(
        request,
        current or [],
        now=NOW,
        policy=policy,
        source=source,
        node="n1",
        auth_user=auth_user,
    )


def accepted(outcome: Plan | Rejection) -> BindingChange:
    assert isinstance(outcome, Plan), outcome
    return outcome.change


def rejected(outcome: Plan | Rejection, status: int) -> Rejection:
    assert isinstance(outcome, Rejection), outcome
    assert outcome.status == status, outcome
    return outcome


def only_upsert(outcome: Plan | Rejection) -> Binding:
    change = accepted(outcome)
    assert change.remove == () and not change.remove_all
    assert len(change.upsert) == 1
    return change.upsert[0]


# -- step 5: the canonical AOR -------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "sip:bob@biloxi.com",
        "sip:bob@BILOXI.com",
        "sip:%62ob@biloxi.com",  # escaped characters unescaped
        "sip:bob@biloxi.com;user=ip;transport=tcp",  # every URI parameter removed
        "sip:bob@biloxi.com:5060",  # the port too
        "sip:bob:secret@biloxi.com",  # and the (deprecated) password
        "sip:bob@biloxi.com?subject=x",
        "sips:bob@biloxi.com",  # RFC 5630 §4.1: the same user
    ],
)
def test_canonical_aor(uri: str) -> None:
    assert canonical_aor(uri) == "sip:bob@biloxi.com"


def test_canonical_aor_keeps_user_case_and_needed_escapes() -> None:
    assert canonical_aor("sip:Bob@biloxi.com") == "sip:Bob@biloxi.com"  # §19.1.4: user exact
    assert canonical_aor("sip:a%40b@biloxi.com") == "sip:a%40b@biloxi.com"
    assert canonical_aor("sip:+1-212-555-0100@biloxi.com;user=phone") == (
        "sip:+1-212-555-0100@biloxi.com"
    )


def test_canonical_aor_refuses_other_schemes() -> None:
    with pytest.raises(ValueError):
        canonical_aor("tel:+12125550100")


# -- binding keys: §19.1.4 and RFC 5626 ----------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("<sip:bob@192.0.2.4>", "<sip:bob@192.0.2.4>;expires=60;q=0.5"),
        ("<sip:bob@PC33.biloxi.com>", "<sip:bob@pc33.biloxi.com>"),
        ("<sip:%62ob@192.0.2.4>", "<sip:bob@192.0.2.4>"),
        ("<sip:bob@192.0.2.4;transport=TCP>", "<sip:bob@192.0.2.4;transport=tcp>"),
        ("<sip:bob@192.0.2.4;ob>", "<sip:bob@192.0.2.4>"),  # other params: only if both
        ("<sip:bob@[2001:DB8:0::1]>", "<sip:bob@[2001:db8::1]>"),
        ("<tel:+1-212-555-0100>", "<tel:+12125550100>"),
    ],
)
def test_same_binding(a: str, b: str) -> None:
    assert binding_key(a) == binding_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("<sip:bob@192.0.2.4>", "<sip:bob@192.0.2.4:5060>"),  # explicit port never = absent
        ("<sip:bob@192.0.2.4>", "<sip:Bob@192.0.2.4>"),
        ("<sip:bob@192.0.2.4>", "<sips:bob@192.0.2.4>"),  # never equivalent
        ("<sip:bob@192.0.2.4>", "<sip:bob@192.0.2.4;transport=tcp>"),
        ("<sip:bob@192.0.2.4;maddr=239.1.1.1>", "<sip:bob@192.0.2.4>"),
    ],
)
def test_different_bindings(a: str, b: str) -> None:
    assert binding_key(a) != binding_key(b)


def test_outbound_key_is_instance_and_reg_id_whatever_the_uri() -> None:
    one = f'<sip:line1@192.0.2.2;transport=tcp>;reg-id=1;+sip.instance="<{INSTANCE.upper()}>"'
    two = f'<sip:line1@10.0.0.9:5070;transport=tcp>;+sip.instance="<{INSTANCE}>";reg-id=1'
    assert binding_key(one) == binding_key(two) == f"<{INSTANCE}>;reg-id=1"
    other_flow = f'<sip:line1@192.0.2.2>;+sip.instance="<{INSTANCE}>";reg-id=2'
    assert binding_key(other_flow) != binding_key(one)
    assert binding_key(one, outbound=False) == "sip:line1@192.0.2.2;transport=tcp"


# -- steps 1, 2 and 5: 404, 420, 405 -------------------------------------------------------


def test_foreign_request_uri_domain_is_404() -> None:
    rejected(run(register("Contact: <sip:bob@192.0.2.4>", uri="sip:atlanta.com")), 404)


def test_foreign_to_domain_is_404() -> None:
    request = register("Contact: <sip:bob@192.0.2.4>", to="sip:bob@atlanta.com")
    rejected(run(request), 404)
    rejected(check_register(request, POLICY) or Plan("", BindingChange()), 404)


def test_unknown_require_is_420() -> None:
    outcome = rejected(run(register("Require: foo", "Contact: <sip:bob@192.0.2.4>")), 420)
    assert ("Unsupported", "foo") in outcome.headers


def test_register_realm_is_the_aor_domain() -> None:
    assert register_realm(register(to="sip:bob@BILOXI.com"), POLICY) == "biloxi.com"


# -- step 4: 403 ---------------------------------------------------------------------------


def test_third_party_registration_is_403() -> None:
    rejected(run(register("Contact: <sip:bob@192.0.2.4>"), auth_user="alice"), 403)


def test_third_party_allowed_by_policy() -> None:
    policy = dataclasses.replace(POLICY, allow_third_party=True)
    only_upsert(run(register("Contact: <sip:bob@192.0.2.4>"), policy=policy, auth_user="alice"))


def test_unauthenticated_request_refused_when_auth_is_required() -> None:
    rejected(run(register("Contact: <sip:bob@192.0.2.4>"), auth_user=None), 403)


def test_without_auth_the_from_address_is_the_identity() -> None:
    policy = dataclasses.replace(POLICY, require_auth=False)
    only_upsert(run(register("Contact: <sip:bob@192.0.2.4>"), policy=policy, auth_user=None))
    other = register("Contact: <sip:bob@192.0.2.4>", to="sip:carol@biloxi.com")
    rejected(run(other, policy=policy, auth_user=None), 403)


# -- step 6: query and wildcard ------------------------------------------------------------


def test_register_without_contact_is_a_query() -> None:
    outcome = run(register(), [binding()])
    assert isinstance(outcome, Plan) and outcome.is_query and outcome.aor == AOR
    assert outcome.change == BindingChange()


def test_wildcard_with_expires_zero_removes_all() -> None:
    current = [binding(), binding("<sip:bob@10.0.0.1>", call_id="other", cseq=9)]
    change = accepted(run(register("Contact: *", "Expires: 0", cseq=1827), current))
    assert change.remove_all
    assert set(change.remove) == {b.key for b in current}
    assert change.upsert == ()


@pytest.mark.parametrize(
    "lines",
    [
        ("Contact: *",),  # no Expires
        ("Contact: *", "Expires: 10"),
        ("Contact: *", "Contact: <sip:bob@192.0.2.4>", "Expires: 0"),
        ("Contact: *, <sip:bob@192.0.2.4>", "Expires: 0"),
    ],
)
def test_wildcard_misused_is_400(lines: tuple[str, ...]) -> None:
    rejected(run(register(*lines, cseq=1827)), 400)


def test_wildcard_older_than_a_binding_fails() -> None:
    # Step 6: same Call-ID, CSeq not higher: "the update MUST be aborted and the request fails".
    rejected(run(register("Contact: *", "Expires: 0", cseq=1826), [binding()]), 500)


def test_wildcard_from_another_call_id_removes_regardless_of_cseq() -> None:
    change = accepted(run(register("Contact: *", "Expires: 0", cseq=1, call_id="new"), [binding()]))
    assert change.remove_all and change.remove == (binding().key,)


# -- step 7: expiration intervals ----------------------------------------------------------


def test_new_binding_records_what_the_rfcs_ask() -> None:
    request = register(
        'Contact: "Bob" <sip:bob@192.0.2.4;transport=udp>;expires=600;q=0.7',
        "User-Agent: softphone/1.0",
    )
    source = Source("tcp", "203.0.113.9", 40123, "198.51.100.1", 5060, flow=77)
    new = only_upsert(run(request, source=source))
    assert new.aor == AOR
    assert new.contact == '"Bob" <sip:bob@192.0.2.4;transport=udp>;q=0.7'  # no expires kept
    assert new.key == "sip:bob@192.0.2.4;transport=udp"
    assert (new.expires_at, new.call_id, new.cseq, new.q) == (NOW + 600, CALL_ID, 1826, 0.7)
    assert (new.transport, new.source, new.local, new.flow) == (
        "tcp",
        "203.0.113.9:40123",
        "198.51.100.1:5060",
        77,
    )
    assert (new.node, new.user_agent, new.registered_at) == ("n1", "softphone/1.0", NOW)
    assert new.path == () and new.instance_id is None and new.reg_id is None


def test_ipv6_source_is_bracketed() -> None:
    source = Source("udp", "2001:db8::4", 5060)
    new = only_upsert(run(register("Contact: <sip:bob@[2001:db8::4]>"), source=source))
    assert new.source == "[2001:db8::4]:5060" and new.local == ""


@pytest.mark.parametrize(
    ("lines", "granted"),
    [
        (("Contact: <sip:bob@192.0.2.4>;expires=120", "Expires: 900"), 120),  # param first
        (("Contact: <sip:bob@192.0.2.4>", "Expires: 900"), 900),  # then the header
        (("Contact: <sip:bob@192.0.2.4>",), 3600),  # then the default
        (("Contact: <sip:bob@192.0.2.4>;expires=soon",), 3600),  # §10.2: malformed = 3600
        (("Contact: <sip:bob@192.0.2.4>;expires=86400",), 7200),  # clamped to max_expires
        (("Contact: <sip:bob@192.0.2.4>;expires=99999999999999999999999",), 7200),
    ],
)
def test_expiration_interval(lines: tuple[str, ...], granted: int) -> None:
    assert only_upsert(run(register(*lines))).expires_at == NOW + granted


def test_too_brief_is_423_with_min_expires() -> None:
    outcome = rejected(run(register("Contact: <sip:bob@192.0.2.4>;expires=30")), 423)
    assert outcome.headers == (("Min-Expires", "60"),)
    rejected(run(register("Contact: <sip:bob@192.0.2.4>", "Expires: 59")), 423)


def test_423_only_below_one_hour() -> None:
    # "If and only if the requested expiration interval is greater than zero AND smaller
    # than one hour AND less than a registrar-configured minimum".
    policy = RegistrarPolicy(
        domains={"biloxi.com"}, min_expires=5000, default_expires=5000, max_expires=9000
    )
    request = register("Contact: <sip:bob@192.0.2.4>;expires=3600", uri="sip:biloxi.com")
    assert only_upsert(run(request, policy=policy)).expires_at == NOW + 3600
    brief = register("Contact: <sip:bob@192.0.2.4>;expires=3599", uri="sip:biloxi.com")
    assert rejected(run(brief, policy=policy), 423).headers == (("Min-Expires", "5000"),)


def test_zero_removes_and_is_never_423() -> None:
    change = accepted(
        run(register("Contact: <sip:bob@192.0.2.4>;expires=0", cseq=1827), [binding()])
    )
    assert change.remove == (binding().key,) and change.upsert == ()


def test_zero_for_an_unknown_contact_changes_nothing() -> None:
    change = accepted(run(register("Contact: <sip:bob@10.9.9.9>", "Expires: 0")))
    assert change == BindingChange()


def test_malformed_expires_header_is_400() -> None:
    rejected(run(register("Contact: <sip:bob@192.0.2.4>", "Expires: soon")), 400)


# -- step 7: Call-ID and CSeq --------------------------------------------------------------


def test_higher_cseq_same_call_id_refreshes() -> None:
    new = only_upsert(run(register("Contact: <sip:bob@192.0.2.4>", cseq=1827), [binding()]))
    assert new.key == binding().key and new.cseq == 1827


@pytest.mark.parametrize("cseq", [1826, 1825])
def test_same_call_id_not_higher_cseq_fails(cseq: int) -> None:
    outcome = run(register("Contact: <sip:bob@192.0.2.4>", cseq=cseq), [binding()])
    rejected(outcome, 500)


def test_other_call_id_replaces_whatever_the_cseq() -> None:
    new = only_upsert(
        run(register("Contact: <sip:bob@192.0.2.4>", cseq=1, call_id="reboot"), [binding()])
    )
    assert (new.call_id, new.cseq) == ("reboot", 1)


def test_one_out_of_order_contact_fails_the_whole_request() -> None:
    # §10.3: "processed atomically ... either processed completely or not at all".
    request = register("Contact: <sip:bob@10.0.0.7>", "Contact: <sip:bob@192.0.2.4>", cseq=1820)
    rejected(run(request, [binding()]), 500)


def test_expired_binding_does_not_count() -> None:
    old = binding(expires_at=NOW - 1)
    new = only_upsert(run(register("Contact: <sip:bob@192.0.2.4>", cseq=1), [old]))
    assert new.cseq == 1


# -- q-values and limits -------------------------------------------------------------------


def test_q_values_are_stored() -> None:
    change = accepted(run(register("Contact: <sip:bob@192.0.2.4>;q=1.0, <sip:bob@10.0.0.7>;q=0.1")))
    assert sorted(b.q or 0 for b in change.upsert) == [0.1, 1.0]


def test_malformed_q_is_400() -> None:
    rejected(run(register("Contact: <sip:bob@192.0.2.4>;q=2")), 400)


def test_max_contacts_is_403_for_a_new_binding_only() -> None:
    policy = dataclasses.replace(POLICY, max_contacts=2)
    current = [binding(), binding("<sip:bob@10.0.0.7>")]
    rejected(run(register("Contact: <sip:bob@10.0.0.8>", cseq=1827), current, policy=policy), 403)
    refresh = register("Contact: <sip:bob@10.0.0.7>", cseq=1827)
    only_upsert(run(refresh, current, policy=policy))
    swap = register("Contact: <sip:bob@10.0.0.7>;expires=0, <sip:bob@10.0.0.8>", cseq=1827)
    assert len(accepted(run(swap, current, policy=policy)).upsert) == 1


# -- Path (RFC 3327) -----------------------------------------------------------------------

PATH = "Path: <sip:P3.EXAMPLEHOME.COM;lr>,<sip:P1.EXAMPLEVISITED.COM;lr>"
PATH_VALUES = ("<sip:P3.EXAMPLEHOME.COM;lr>", "<sip:P1.EXAMPLEVISITED.COM;lr>")


def test_path_is_stored_when_the_ua_supports_it() -> None:
    new = only_upsert(run(register("Contact: <sip:bob@192.0.2.4>", "Supported: path", PATH)))
    assert new.path == PATH_VALUES


def test_path_without_supported_path_is_420() -> None:
    outcome = rejected(run(register("Contact: <sip:bob@192.0.2.4>", PATH)), 420)
    assert outcome.headers == (("Unsupported", "path"),)


def test_path_without_support_stored_when_the_policy_allows() -> None:
    policy = dataclasses.replace(POLICY, path_requires_support=False)
    request = register("Contact: <sip:bob@192.0.2.4>", PATH)
    new = only_upsert(run(request, policy=policy))
    assert new.path == PATH_VALUES
    assert ok_response(request, [new], now=NOW, policy=policy).headers.get("Path") is None


def test_malformed_path_is_400() -> None:
    rejected(run(register("Contact: <sip:bob@192.0.2.4>", "Supported: path", "Path: <bad")), 400)


# -- outbound (RFC 5626 §6) ----------------------------------------------------------------

OB_CONTACT = (
    f'Contact: <sip:line1@192.0.2.2;transport=tcp;ob>;reg-id=1;+sip.instance="<{INSTANCE}>"'
)


def test_outbound_binding_is_keyed_by_instance_and_reg_id() -> None:
    source = Source("tcp", "192.0.2.2", 50000, "198.51.100.1", 5060, flow=5)
    new = only_upsert(run(register(OB_CONTACT, "Supported: path, outbound"), source=source))
    assert new.key == f"<{INSTANCE}>;reg-id=1"
    assert (new.instance_id, new.reg_id, new.flow) == (INSTANCE, 1, 5)


def test_new_flow_registration_replaces_the_old_flow_whatever_its_contact() -> None:
    old = binding(
        f'<sip:line1@10.1.1.1:5099;transport=tcp>;reg-id=1;+sip.instance="<{INSTANCE}>"',
        call_id="before-reboot",
        cseq=77,
        flow=4,
    )
    new = only_upsert(run(register(OB_CONTACT, "Supported: outbound", cseq=1), [old]))
    assert new.key == old.key and "192.0.2.2" in new.contact and new.cseq == 1


def test_outbound_not_first_hop_without_ob_path_is_439() -> None:
    via = "SIP/2.0/TCP edge.biloxi.com;branch=z9hG4bK1, SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK2"
    request = register(OB_CONTACT, "Supported: path, outbound", via=via)
    rejected(run(request), 439)
    with_path = register(
        OB_CONTACT, "Supported: path, outbound", "Path: <sip:tok@edge.biloxi.com;lr;ob>", via=via
    )
    assert only_upsert(run(with_path)).reg_id == 1


def test_reg_id_ignored_when_outbound_does_not_apply_and_ua_not_outbound() -> None:
    via = "SIP/2.0/TCP edge.biloxi.com;branch=z9hG4bK1, SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK2"
    new = only_upsert(run(register(OB_CONTACT, via=via)))
    assert new.key == "sip:line1@192.0.2.2;transport=tcp" and new.reg_id is None
    assert new.instance_id == INSTANCE


def test_reg_id_without_instance_is_ignored() -> None:
    new = only_upsert(run(register("Contact: <sip:bob@192.0.2.4>;reg-id=1")))
    assert new.key == "sip:bob@192.0.2.4" and new.reg_id is None


def test_two_contacts_with_a_reg_id_is_400() -> None:
    request = register(OB_CONTACT, "Contact: <sip:bob@192.0.2.4>", "Supported: outbound")
    rejected(run(request), 400)
    # A reg-id Contact beside a removal is fine: "can also de-register any Contact
    # header fields with zero expiration".
    removal = register(OB_CONTACT, "Contact: <sip:bob@192.0.2.4>;expires=0", cseq=1827)
    assert len(accepted(run(removal, [binding()])).upsert) == 1


def test_malformed_reg_id_is_400() -> None:
    rejected(
        run(register(f'Contact: <sip:a@192.0.2.2>;reg-id=x;+sip.instance="<{INSTANCE}>"')), 400
    )


# -- step 8: the 200 -----------------------------------------------------------------------


def test_ok_lists_every_binding_with_remaining_expires() -> None:
    request = register("Contact: <sip:bob@192.0.2.4>", "Record-Route: <sip:p1.biloxi.com;lr>")
    bindings = [
        binding('<sip:bob@10.0.0.7>;+sip.instance="<urn:uuid:1>"', expires_at=NOW + 99.9),
        binding("<sip:bob@192.0.2.4>", q=0.5, expires_at=NOW + 3600),
        binding("<sip:bob@10.0.0.9>", expires_at=NOW + 0.5),  # gone by the time it is read
    ]
    response = ok_response(request, bindings, now=NOW, policy=POLICY, date=sip_date(NOW))
    assert response.status == 200
    assert response.headers.get_all("Contact") == [
        '<sip:bob@10.0.0.7>;+sip.instance="<urn:uuid:1>";expires=99',
        "<sip:bob@192.0.2.4>;q=0.5;expires=3600",
    ]
    assert response.headers.get("Date") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert response.headers.get("Record-Route") is None  # §10.3
    assert response.to.tag and response.headers.get("Require") is None
    assert response.headers.get("Supported") == "outbound, path"
    assert response.call_id == CALL_ID and response.cseq.seq == 1826


def test_ok_to_tag_is_stable_per_transaction_and_can_be_given() -> None:
    request = register()
    tag = ok_response(request, [], now=NOW, policy=POLICY).to.tag
    assert tag == ok_response(request, [], now=NOW, policy=POLICY).to.tag
    assert ok_response(request, [], now=NOW, policy=POLICY, to_tag="t1").to.tag == "t1"


def test_ok_echoes_path_and_adds_service_route() -> None:
    policy = dataclasses.replace(
        POLICY, service_route=("<sip:P2.HOME.EXAMPLE.COM;lr>", "<sip:HSP.HOME.EXAMPLE.COM;lr>")
    )
    request = register("Contact: <sip:bob@192.0.2.4>", "Supported: path", PATH)
    response = ok_response(request, [binding()], now=NOW, policy=policy)
    assert response.headers.get_all("Path") == [", ".join(PATH_VALUES)]
    assert response.headers.get_all("Service-Route") == list(policy.service_route)
    query = ok_response(register(), [binding()], now=NOW, policy=policy)  # RFC 3608 §6.3
    assert query.headers.get_all("Service-Route") == list(policy.service_route)


def test_ok_requires_outbound_when_a_flow_was_registered() -> None:
    request = register(OB_CONTACT, "Supported: path, outbound")
    new = only_upsert(run(request))
    response = ok_response(request, [new], now=NOW, policy=POLICY)
    assert response.headers.get("Require") == "outbound"
    contact = Address.parse(response.headers.get_all("Contact")[0])
    assert contact.params["reg-id"] == "1" and contact.expires == 3600
    not_supported = register(OB_CONTACT)
    assert ok_response(not_supported, [new], now=NOW, policy=POLICY).headers.get("Require") is None


def test_policy_checks_its_values() -> None:
    with pytest.raises(ValueError):
        RegistrarPolicy(domains={"biloxi.com"}, min_expires=100, default_expires=50)
    with pytest.raises(ValueError):
        RegistrarPolicy(domains={"biloxi.com"}, service_route=("<sip:hsp.biloxi.com>",))
    with pytest.raises(TypeError):
        RegistrarPolicy(domains="biloxi.com")  # type: ignore[arg-type]
    assert RegistrarPolicy(domains={"[2001:DB8::1]"}).serves("[2001:db8:0::1]")
    assert POLICY.realm_for("Biloxi.COM") == "biloxi.com"
