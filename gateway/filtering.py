"""The thread filter of contract.md ("Behaviour in Mattermost") and the allowlist it uses.

Pure and synchronous, unit-tested in tests/unit/gateway/test_filter.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from gateway.models import Post

__all__ = [
    "ID_RE",
    "INTEGRATION_PROPS",
    "NOT_ALLOWED",
    "Allowlist",
    "build_allowlist",
    "integration_prop",
    "names_to_resolve",
    "reject_reason",
]

ID_RE = re.compile(r"^[a-z0-9]{26}$")
NOT_ALLOWED = "author not allowed"  # the last check: every other reason comes first


@dataclass(frozen=True)
class Allowlist:
    """Who may talk to Claude: everyone (``*``) or these user ids. Empty refuses everyone.

    Configured usernames are resolved to ids from the server (gateway.access); a name never
    decides by itself.
    """

    everyone: bool = False
    user_ids: frozenset[str] = frozenset()

    def allows(self, user_id: str) -> bool:
        return self.everyone or user_id in self.user_ids


def _clean(entry: str) -> str:
    return entry.strip().removeprefix("@").strip()


def names_to_resolve(entries: Iterable[str]) -> list[str]:
    """The entries to look up as usernames (lower-case, without ``@``; ``*`` excluded).

    Id-shaped entries are ids: Mattermost usernames are at most 22 characters.
    """
    names = {_clean(e).lower() for e in entries}
    return sorted(n for n in names if n and n != "*" and not ID_RE.match(n))


def build_allowlist(
    entries: Iterable[str], resolved: Mapping[str, str]
) -> tuple[Allowlist, list[str]]:
    """The allowlist from the configured entries and ``resolved`` (username → id, the
    server's word), and the names not resolved (they allow nobody until they are)."""
    ids: set[str] = set()
    unresolved: list[str] = []
    everyone = False
    for raw in entries:
        entry = _clean(raw)
        if not entry:
            continue
        if entry == "*":
            everyone = True
        elif ID_RE.match(entry):
            ids.add(entry)  # Mattermost usernames are at most 22 characters: an id
        elif entry.lower() in resolved:
            ids.add(resolved[entry.lower()])
        else:
            unresolved.append(entry)
    return Allowlist(everyone=everyone, user_ids=frozenset(ids)), unresolved


# Set by webhooks, slash-command responses, plugins and OAuth apps, which post under the
# invoking user's id: their text is a third party's, never the user's prompt.
INTEGRATION_PROPS = (
    "from_webhook",
    "override_username",
    "override_icon_url",
    "override_icon_emoji",
    "webhook_display_name",
    "from_plugin",
    "from_oauth_app",
)


def integration_prop(post: Post) -> str:
    """The first integration prop the post carries (any value but absent, null, false or
    empty counts), or ""."""
    for key in INTEGRATION_PROPS:
        value = post.prop(key)
        if value not in (None, False, "", "false"):
            return key
    return ""


def reject_reason(post: Post, *, thread_id: str, bot_id: str, allow: Allowlist) -> str | None:
    """Why ``post`` is not a prompt for Claude, or None when it is one."""
    if not thread_id or post.root_id != thread_id:
        return "not a reply in the thread"
    if post.user_id == bot_id:
        return "the bot's own post"
    if not ID_RE.match(post.id):
        return "a malformed post id"
    if post.unreadable:
        return "unreadable (JSON too deep or a number out of range)"
    if post.prop("from_bot") in ("true", True):
        return "another bot's post"
    integration = integration_prop(post)
    if integration:
        return f"an integration's post ({integration})"
    if post.type:
        return f"a system post ({post.type})"
    if post.delete_at:
        return "deleted"
    if post.original_id:
        return "an edit-history row"
    if not allow.allows(post.user_id):
        return NOT_ALLOWED
    return None
