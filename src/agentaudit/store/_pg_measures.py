"""The SQL of an event's measures that the PostgreSQL rollups and facts sum: its tokens, whether
it is metered, the tokens a price applies to, its recorded cost as exact integers."""

from __future__ import annotations

__all__ = ["metered", "priced_tokens", "recorded", "tokens"]


def tokens(a: str = "") -> str:
    """An event's tokens (columns prefixed by ``a``, e.g. ``"e."``)."""
    return (f"coalesce({a}token_count, coalesce({a}prompt_tokens, 0) + "
            f"coalesce({a}completion_tokens, 0))")


def metered(a: str = "") -> str:
    """Whether an event carries tokens or a cost."""
    return (f"({a}prompt_tokens IS NOT NULL OR {a}completion_tokens IS NOT NULL "
            f"OR {a}token_count IS NOT NULL OR {a}cost_usd IS NOT NULL)")


def priced_tokens(a: str = "") -> tuple[str, str]:
    """The (prompt, completion) tokens a price applies to."""
    return (f"coalesce({a}prompt_tokens, CASE WHEN {a}completion_tokens IS NULL "
            f"THEN {a}token_count END, 0)", f"coalesce({a}completion_tokens, 0)")


def recorded(a: str = "") -> tuple[str, str]:
    """A recorded cost as (whole dollars, pico-dollars beyond them), with the float operations
    of SQLite's ``dollars`` and ``pico_rest`` (trunc, as SQLite's CAST)."""
    return (f"trunc({a}cost_usd)::bigint",
            f"trunc(({a}cost_usd - trunc({a}cost_usd)) * 1e12::float8 + 0.5::float8)::bigint")
