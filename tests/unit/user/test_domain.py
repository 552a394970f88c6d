from datetime import UTC, datetime, timedelta

import pytest

from msashop.services.user.domain import (
    RefreshState,
    RefreshToken,
    RefreshVerdict,
    WeakPassword,
    check_password,
    hash_refresh_token,
    new_refresh_token,
    normalise_email,
    password_problems,
    refresh_verdict,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _token(**changes: object) -> RefreshToken:
    fields: dict[str, object] = {
        "token_hash": "h",
        "user_id": "u1",
        "session_id": "s1",
        "created_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(days=1),
    }
    return RefreshToken(**{**fields, **changes})  # type: ignore[arg-type]


def test_email_is_normalised_to_lowercase_without_surrounding_spaces() -> None:
    assert normalise_email("  Alice@Example.COM ") == "alice@example.com"


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1abc", "at least 10 characters"),
        ("abcdefghijkl", "at least one digit"),
        ("123456789012", "at least one letter"),
        ("a1" * 65, "at most 128 characters"),
    ],
)
def test_password_policy_names_what_is_missing(password: str, problem: str) -> None:
    assert problem in password_problems(password)
    with pytest.raises(WeakPassword, match=problem):
        check_password(password)


@pytest.mark.parametrize("password", ["abcdefghi1", "correct horse 9", "Ünïcödé-pässwörd-7", "a1" * 64])
def test_password_policy_accepts_ten_to_128_chars_with_letter_and_digit(password: str) -> None:
    assert password_problems(password) == []
    check_password(password)


def test_fresh_refresh_token_is_usable_and_rotates() -> None:
    assert _token().state(NOW) is RefreshState.USABLE
    assert refresh_verdict(RefreshState.USABLE) is RefreshVerdict.ROTATE


def test_spent_refresh_token_presented_again_ends_the_session() -> None:
    token = _token(used_at=NOW - timedelta(minutes=1))
    assert token.state(NOW) is RefreshState.SPENT
    assert refresh_verdict(token.state(NOW)) is RefreshVerdict.END_SESSION


def test_spent_token_counts_as_reuse_even_after_it_expired() -> None:
    token = _token(used_at=NOW - timedelta(days=2), expires_at=NOW - timedelta(days=1))
    assert token.state(NOW) is RefreshState.SPENT


def test_revoked_token_is_rejected_even_if_it_was_also_spent() -> None:
    token = _token(used_at=NOW - timedelta(minutes=2), revoked_at=NOW - timedelta(minutes=1))
    assert token.state(NOW) is RefreshState.REVOKED
    assert refresh_verdict(token.state(NOW)) is RefreshVerdict.REJECT


def test_expired_token_is_rejected_from_its_expiry_instant() -> None:
    token = _token(expires_at=NOW)
    assert token.state(NOW - timedelta(seconds=1)) is RefreshState.USABLE
    assert token.state(NOW) is RefreshState.EXPIRED
    assert refresh_verdict(RefreshState.EXPIRED) is RefreshVerdict.REJECT


def test_unknown_token_is_rejected() -> None:
    assert refresh_verdict(None) is RefreshVerdict.REJECT


def test_new_refresh_token_stores_only_the_hash_and_expires_after_ttl() -> None:
    raw, token = new_refresh_token("u1", "s1", NOW, timedelta(days=7))
    assert len(raw) >= 43  # 32 random bytes, url-safe base64
    assert token.token_hash == hash_refresh_token(raw) != raw
    assert (token.user_id, token.session_id) == ("u1", "s1")
    assert token.expires_at == NOW + timedelta(days=7)
    assert token.state(NOW) is RefreshState.USABLE


def test_refresh_tokens_are_unique() -> None:
    raws = {new_refresh_token("u1", "s1", NOW, timedelta(days=7))[0] for _ in range(50)}
    assert len(raws) == 50
