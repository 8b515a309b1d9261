"""``Redactor``: modes, key rules, what is recorded, false positives, failure handling."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from agentaudit.events import AuditEvent
from agentaudit.exceptions import ConfigError
from agentaudit.redact import RedactionRules, Redactor

from .samples import ALL_ON, CARDS, CLEAN, PII, SECRETS, sensitive_params, sensitive_text


def _event(**fields: Any) -> AuditEvent:
    return AuditEvent(event_type="agent.tool_call", agent_name="a", **fields)


def _text(ev: AuditEvent) -> str:
    return repr((ev.params, ev.result, ev.reasoning, ev.error, ev.tags, ev.user_id))


def test_default_policy_masks_secrets_and_cards_only() -> None:
    ev = Redactor().redact(_event(params=sensitive_params(), error=sensitive_text()))
    text = _text(ev)
    for value in [*SECRETS.values(), *CARDS.values()]:
        assert value not in text
    assert "[SECRET]" in text and "[CARD]" in text and "[REDACTED]" in text
    assert PII["email"] in text and PII["ipv4"] in text  # off unless configured
    for clean in CLEAN:
        assert clean in text


def test_every_detector_when_configured() -> None:
    ev = Redactor(ALL_ON).redact(_event(params=sensitive_params(), result=sensitive_text()))
    text = _text(ev)
    for value in [*SECRETS.values(), *CARDS.values(), *PII.values()]:
        assert value not in text, value
    for mask in ("[PHONE]", "[IBAN]", "[SSN]", "[IP]", "pii:email:"):
        assert mask in text
    for clean in CLEAN:
        assert clean in text


def test_redaction_is_recorded_as_counts_without_values() -> None:
    ev = Redactor().redact(_event(params={"a": f"x {CARDS['visa']} y", "token": "abc"},
                                  error=f"failed with {SECRETS['openai']}",
                                  tags={"env": "prod"}))
    assert ev.tags == {"env": "prod", "redacted": "card:1,field:1,secret:1"}
    assert ev.params == {"a": "x [CARD] y", "token": "[REDACTED]"}
    untouched = Redactor().redact(_event(params={"a": "nothing here"}))
    assert untouched.tags is None


def test_callers_containers_are_not_modified() -> None:
    params = {"note": f"card {CARDS['visa']}", "inner": [{"password": "x"}]}
    Redactor().redact(_event(params=params))
    assert params == {"note": f"card {CARDS['visa']}", "inner": [{"password": "x"}]}


@pytest.mark.parametrize("key", ["password", "PASSWORD", "Api-Key", "apikey", "access_token",
                                 "Authorization", "client_secret", "private_key", "passwd"])
def test_field_names_are_case_insensitive(key: str) -> None:
    ev = Redactor().redact(_event(params={"outer": {key: {"nested": "value"}}}))
    assert ev.params == {"outer": {key: "[REDACTED]"}}


def test_hash_mode_pseudonyms_are_stable_and_per_tenant() -> None:
    r = Redactor({"modes": {"email": "hash"}, "key": "k1"})
    a = r.redact(_event(params={"to": PII["email"]}))
    b = r.redact(_event(result=f"reply to {PII['email']}"))
    other = r.redact(_event(params={"to": "bob@example.org"}))
    tenant2 = r.redact(_event(params={"to": PII["email"]}, tenant="globex"))
    assert a.params is not None and a.params["to"].startswith("pii:email:")
    assert len(a.params["to"]) == len("pii:email:") + 12
    assert a.params["to"] in str(b.result)
    assert other.params != a.params and tenant2.params != a.params
    again = Redactor({"modes": {"email": "hash"}, "key": "k1"}).redact(
        _event(params={"to": PII["email"]}))
    assert again.params == a.params  # stable across processes with the same key


def test_hash_without_key_masks_and_says_so(monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("AGENTAUDIT_REDACT_KEY", raising=False)
    with caplog.at_level(logging.WARNING, "agentaudit"):
        r = Redactor({"modes": {"email": "hash"}})
    assert "needs a key" in caplog.text
    assert r.redact(_event(params={"to": PII["email"]})).params == {"to": "[EMAIL]"}


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTAUDIT_REDACT_KEY", "env-key")
    ev = Redactor({"modes": {"email": "hash"}}).redact(_event(params={"to": PII["email"]}))
    assert ev.params is not None and ev.params["to"].startswith("pii:email:")


def test_drop_mode_removes_values_and_fields() -> None:
    r = Redactor({"modes": {"email": "drop", "card": "drop"}, "field_mode": "drop"})
    ev = r.redact(_event(params={"msg": f"write to {PII['email']} now", "password": "x",
                                 "card": CARDS["visa"]}))
    assert ev.params == {"msg": "write to  now", "card": ""}
    assert ev.tags == {"redacted": "card:1,email:1,field:1"}


def test_user_id_only_when_configured() -> None:
    uid = PII["email"]
    assert Redactor({"modes": {"email": "mask"}}).redact(_event(user_id=uid)).user_id == uid
    ev = Redactor({"modes": {"email": "mask"}, "user_id": True}).redact(_event(user_id=uid))
    assert ev.user_id == "[EMAIL]"


def test_custom_pattern() -> None:
    r = Redactor({"patterns": {"employee_id": r"\bEMP-\d{6}\b"}, "modes": {"employee_id": "mask"}})
    ev = r.redact(_event(reasoning="assigned to EMP-004211 today"))
    assert ev.reasoning == "assigned to [EMPLOYEE_ID] today"


@pytest.mark.parametrize("clean", [
    *CLEAN, "order ORD-12345678 shipped 2026-11-25 10:42:00", "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "build 20261125.1 took 1732578053 ms", "version 1.2.3.4-beta", "uuid 123e4567-e89b-12d3-a456-426614174000",
    "tracking 1Z999AA10123456784", "invoice INV-2026-000123", "ts 1732578053123456"])
def test_false_positives_with_every_detector_on(clean: str) -> None:
    r = Redactor({"modes": {"phone": "mask", "card": "mask", "ssn": "mask", "iban": "mask",
                            "secrets": "mask", "email": "mask"}})
    ev = r.redact(_event(params={"v": clean}))
    assert ev.params == {"v": clean} and ev.tags is None


def test_failure_withholds_the_payload_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Redactor()

    def boom(*a: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(r, "_walk", boom)
    ev = r.redact(_event(params={"q": CARDS["visa"]}, result="r", error=SECRETS["aws"],
                         tags={"k": "v"}))
    assert ev.params == {"redaction": "[REDACTION-FAILED]"}
    assert ev.result == "[REDACTION-FAILED]" and ev.error == "[REDACTION-FAILED]"
    assert ev.tags == {"k": "[REDACTION-FAILED]", "redacted": "failed:1"}
    assert r.failures == 1


def test_config_validation_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError):
        Redactor({"modes": {"email": "scramble"}})
    with pytest.raises(ConfigError):
        Redactor({"modes": {"nonsense": "mask"}})
    with pytest.raises(ConfigError):
        Redactor({"colour": "blue"})
    cfg = tmp_path / "redact.toml"
    cfg.write_text('[redact]\nkey = "k"\nmodes = { email = "hash", phone = "off" }\n')
    monkeypatch.setenv("AGENTAUDIT_REDACT_CONFIG", str(cfg))
    r = Redactor.from_env()
    assert r.modes["email"] == "hash" and "phone" not in r.modes
    assert r.modes["card_number"] == "mask"  # defaults stay on
    assert isinstance(r.rules, RedactionRules)


def test_off_leaves_everything() -> None:
    r = Redactor({"modes": {"secrets": "off", "card": "off"}, "field_mode": "off"})
    params = sensitive_params()
    assert r.redact(_event(params=params)).params == params


def test_custom_pattern_is_masked_by_default() -> None:
    ev = Redactor({"patterns": {"badge": r"\bBDG\d{4}\b"}}).redact(_event(reasoning="BDG1234 in"))
    assert ev.reasoning == "[BADGE] in"


def test_collector_settings_turn_redaction_on_and_off(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    from agentaudit.server.collector import _redactor
    from agentaudit.server.settings import ServerSettings

    db = str(tmp_path / "a.db")
    assert isinstance(_redactor(ServerSettings(db=db)), Redactor)
    monkeypatch.setenv("AGENTAUDIT_REDACT", "false")
    assert _redactor(ServerSettings.from_env(db=db)) is None
    cfg = tmp_path / "r.toml"
    cfg.write_text('[redact]\nmodes = { email = "mask" }\n')
    monkeypatch.setenv("AGENTAUDIT_REDACT", "true")
    monkeypatch.setenv("AGENTAUDIT_REDACT_CONFIG", str(cfg))
    r = _redactor(ServerSettings.from_env(db=db))
    assert r is not None and r.modes["email"] == "mask"


def test_keys_are_scanned_like_values() -> None:
    ev = Redactor(ALL_ON).redact(_event(params={PII["email"]: {"card": CARDS["visa"]},
                                                "plain": "ok"}))
    text = _text(ev)
    assert PII["email"] not in text and CARDS["visa"] not in text
    assert ev.params["plain"] == "ok"  # type: ignore[index]
    assert "email:1" in ev.tags["redacted"] and "card:1" in ev.tags["redacted"]  # type: ignore[index]


def test_redacting_twice_changes_nothing_more() -> None:
    """Events spilled on overflow are redacted before the spool and again when replayed."""
    r = Redactor(ALL_ON)
    once = r.redact(_event(params={"password": "hunter2", "to": PII["email"]},
                           error=CARDS["visa"]))
    before = (_text(once), dict(once.tags or {}))
    twice = r.redact(once)
    assert (_text(twice), dict(twice.tags or {})) == before


@pytest.mark.parametrize("text", [
    "paid\n{card}", "paid\t{card}.", 'say "{card}"', "c:\\{card}", "line\r\n{card}\u0007",
])
def test_card_after_a_json_escape_is_still_found(text: str) -> None:
    """The fast path looks at the event's JSON, where a newline is the two characters ``\\n``:
    the digits after it must not be taken for the tail of a word and skipped."""
    ev = Redactor().redact(_event(params={"note": text.format(card=CARDS["visa"])}))
    assert CARDS["visa"] not in _text(ev) and "[CARD]" in ev.params["note"]  # type: ignore[index]


def test_random_uuids_do_not_send_events_down_the_careful_path() -> None:
    """The digits and dashes of a UUID often form a run of 13 (a card's length): the event-level
    check confirms such runs with the card detector instead of walking the event."""
    import random
    import uuid

    rng = random.Random(3)
    r = Redactor()
    events = [_event(params={"request_id": str(uuid.UUID(int=rng.getrandbits(128))),
                             "ts": "2026-11-25T23:40:53Z"}) for _ in range(500)]
    walked = [e for e in events if r._needs_work(e)]
    assert walked == []


@pytest.mark.parametrize("text", [
    "ref 0000-1111-----BEGIN CERT",  # a card-like group glued to a block's needle
    "ref 0000-1111-----BEGIN PRIVATE KEY-----\nMIIB",
    "4111111111111sk-proj-Zk29fQ0sLm4Xw8Rb1Vc7Ny5Tq3",  # 13 digits glued to an API key
    "9.9900000000000002 then a password=hunter2",
    "order 1234-5678-9012-3456 plain",
    "nothing to see, 2026-11-25T23:40:53Z and 1732578053",
])
def test_event_precheck_agrees_with_the_exact_check(text: str) -> None:
    """The event pre-check answers the common case with one automaton of needles and digit
    needles; its search does not overlap matches, so a digit needle may hide a needle glued to
    it. Whatever the text, its answer must be the exact two-step check's."""
    from agentaudit.redact.redactor import _SIGNAL
    from agentaudit.store.rows import encode_payload

    for rules in (None, ALL_ON):
        r = Redactor(rules)
        raw = encode_payload(_event(params={"note": text}))
        sig = raw.translate(_SIGNAL, b" ")
        chk = r._event_check
        exact = chk._digits_confirmed(sig, raw) or chk._regexes_hit(None)
        assert chk.check(sig, None, raw) == exact, (rules, text)
    ev = Redactor().redact(_event(params={"note": "0000-1111-----BEGIN PRIVATE KEY-----\nMIIB"}))
    assert "PRIVATE KEY-----\nMIIB" not in _text(ev)


def test_finding_filter_lets_every_finding_through() -> None:
    """The compliance PII scan skips the texts ``finding_filter`` rejects: it must never reject
    a text in which ``scan`` finds something, with any choice of detectors."""
    from agentaudit.redact import detector_names, finding_filter, scan

    texts = [f"note: {v} end" for v in (*SECRETS.values(), *CARDS.values(), *PII.values())]
    texts += [f'{{"x": "{v}"}}' for v in (*CARDS.values(), *PII.values())]
    for names in ([n] for n in detector_names()):
        may = finding_filter(names)
        for text in texts:
            if scan(text, names):
                assert may(text), (names, text)
    everything = finding_filter(detector_names())
    assert sum(bool(scan(t)) for t in texts) > 20
    assert all(everything(t) for t in texts if scan(t))
    # and it does reject ordinary text (which is what makes it worth calling)
    assert not everything('{"params": {"query": "shipping policy", "status": "shipped"}}')
