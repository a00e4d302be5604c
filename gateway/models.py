"""Our own view of Mattermost's JSON: only the fields the gateway uses, unknown ones ignored.

These Structs are deliberately separate from any emulator or driver: the gateway must hold
its own understanding of the API (design.md). Decoding is lenient: JSON is parsed into
plain values first and each field we use is taken only when it has the expected type, so a
missing, ``null`` or oddly typed optional field becomes its default instead of rejecting
the whole post. Only a post's (or user's) ``id`` is required.

Hostile JSON never raises past :func:`decode_json` as anything but ``msgspec.DecodeError``:
msgspec raises ``RecursionError`` for nesting deeper than ~1000 levels (one 7 KB post's
props) and ``ValidationError`` for a number it cannot hold (``1e400``), which would sink a
whole page with one post. So a document that fails is decoded once more with each such
value replaced by :data:`UNREADABLE` (linear time), and a post holding one anywhere is
``unreadable``: judged and refused alone, while the rest of its page goes on.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = [
    "MAX_DEPTH",
    "UNREADABLE",
    "FileInfo",
    "Post",
    "PostList",
    "User",
    "WsFrame",
    "decode_json",
    "holds_unreadable",
    "to_file_info",
    "to_frame",
    "to_post",
    "to_post_list",
    "to_user",
    "to_users",
]


class Post(msgspec.Struct, kw_only=True):
    """A post as REST returns it and as the ``posted`` event carries it (a JSON string)."""

    id: str
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    user_id: str = ""
    channel_id: str = ""
    root_id: str = ""
    original_id: str = ""
    message: str = ""
    type: str = ""
    # Free-form JSON set by clients and the server (from_bot, our mmclaude_* keys).
    props: dict[str, object] | None = None
    # Some value in it could not be read (too deep, a number out of range): never a prompt.
    unreadable: bool = False
    # Attachments: ids for GET /files/{id} (at most 10 per post on the server), and their
    # infos when the server embedded them (``metadata.files``).
    file_ids: tuple[str, ...] = ()
    files: tuple[FileInfo, ...] = ()

    def prop(self, key: str) -> object:
        """One prop, or None when absent (props may be missing or null on the wire)."""
        return None if self.props is None else self.props.get(key)


class PostList(msgspec.Struct, kw_only=True):
    """The ``PostList`` of the thread and channel endpoints."""

    order: list[str] = []
    posts: dict[str, Post] = {}
    has_next: bool = False
    next_post_id: str = ""
    prev_post_id: str = ""


class User(msgspec.Struct, kw_only=True):
    """A user (or bot) as ``users/me``, ``users/{id}`` and ``users/usernames`` return it."""

    id: str
    username: str = ""
    is_bot: bool = False


class WsFrame(msgspec.Struct, kw_only=True):
    """One server→client WebSocket frame: an event (``event`` and ``seq``) or a response to
    one of our requests (``seq_reply``, no ``event``)."""

    event: str = ""
    seq: int | None = None
    data: dict[str, object] | None = None
    status: str = ""
    seq_reply: int | None = None


MAX_DEPTH = 64  # containers deeper than this are replaced (Mattermost's own JSON is shallow)
UNREADABLE_KEY = "\u0000mmclaude_unreadable"
UNREADABLE: dict[str, object] = {UNREADABLE_KEY: True}
_UNREADABLE_JSON = b'{"\\u0000mmclaude_unreadable":true}'
MAX_INT = 2**53  # ids' timestamps are milliseconds; anything beyond is not Mattermost's
# A string (skipped whole, in C), a bracket, or a number: the tokens that can make msgspec
# fail on otherwise valid JSON.
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[{]++|[\]}]++|-?[0-9][0-9.eE+-]*+', re.DOTALL)


def _defuse(raw: bytes) -> bytes | None:
    """``raw`` with every container nested deeper than :data:`MAX_DEPTH` and every number
    msgspec cannot hold replaced by the :data:`UNREADABLE` marker; None when nothing was.

    Runs of brackets are one token each, so a bomb of nesting costs a few regex steps."""
    out: list[bytes] = []
    last = 0  # raw[last:] not yet copied
    depth = 0
    skip_from = -1  # depth of the container being dropped (-1: none)
    changed = False
    for match in _TOKEN.finditer(raw):
        start, token = match.start(), match.group()
        first = token[:1]
        if first == b'"':
            continue
        if first in (b"[", b"{"):
            if skip_from < 0 and depth + len(token) > MAX_DEPTH:
                cut = start + MAX_DEPTH - depth  # the first container too deep
                skip_from = MAX_DEPTH + 1
                out.append(raw[last:cut])
                out.append(_UNREADABLE_JSON)
                changed = True
            depth += len(token)
            continue
        if first in (b"]", b"}"):
            if skip_from >= 0 and depth - len(token) < skip_from:
                last = start + depth - skip_from + 1  # just past the dropped one's close
                skip_from = -1
            depth -= len(token)
            continue
        if skip_from >= 0:
            continue
        try:
            msgspec.json.decode(token)
        except msgspec.DecodeError:
            out.append(raw[last:start])
            out.append(_UNREADABLE_JSON)
            last = match.end()
            changed = True
    if not changed or skip_from >= 0:
        return None  # nothing to replace, or unbalanced: not JSON anyway
    out.append(raw[last:])
    return b"".join(out)


def decode_json(raw: bytes | str) -> Any:
    """Plain Python values; raises ``msgspec.DecodeError`` (and nothing else) for text that
    is not JSON. Valid JSON too deep or with numbers out of range decodes, with those values
    replaced by :data:`UNREADABLE`."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        defused = _defuse(data)
        if defused is None:
            if isinstance(exc, msgspec.DecodeError):
                raise
            raise msgspec.DecodeError(f"JSON nested too deep: {exc}") from None
    try:
        return msgspec.json.decode(defused)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise msgspec.DecodeError(f"malformed JSON: {exc}") from None


def holds_unreadable(value: object) -> bool:
    """True when :data:`UNREADABLE` is anywhere in ``value`` (iterative: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get(UNREADABLE_KEY) is True and len(item) == 1:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return value
    return 0


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return value
    return None


def to_post(value: object) -> Post | None:
    """A Post from a decoded JSON object; None when it is not an object with a string id."""
    if not isinstance(value, dict):
        return None
    post_id = value.get("id")
    if not isinstance(post_id, str) or not post_id:
        return None
    props = value.get("props")
    return Post(
        id=post_id,
        create_at=_int(value, "create_at"),
        update_at=_int(value, "update_at"),
        delete_at=_int(value, "delete_at"),
        user_id=_str(value, "user_id"),
        channel_id=_str(value, "channel_id"),
        root_id=_str(value, "root_id"),
        original_id=_str(value, "original_id"),
        message=_str(value, "message"),
        type=_str(value, "type"),
        props=props if isinstance(props, dict) else None,
        unreadable=holds_unreadable(value),
        file_ids=_ids(value.get("file_ids")),
        files=_file_infos(value.get("metadata")),
    )


def _file_infos(metadata: object) -> tuple[FileInfo, ...]:
    files = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(files, list):
        return ()
    return tuple(info for info in map(to_file_info, files) if info is not None)


def _ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and v))


class FileInfo(msgspec.Struct, kw_only=True):
    """``GET /files/{id}/info`` (and an item of ``POST /files``' ``file_infos``)."""

    id: str
    name: str = ""
    size: int = 0
    mime_type: str = ""


def to_file_info(value: object) -> FileInfo | None:
    if not isinstance(value, dict):
        return None
    file_id = value.get("id")
    if not isinstance(file_id, str) or not file_id:
        return None
    return FileInfo(
        id=file_id,
        name=_str(value, "name"),
        size=max(0, _int(value, "size")),
        mime_type=_str(value, "mime_type"),
    )


def to_post_list(value: object) -> PostList:
    """A PostList; ``order``/``posts`` may be null or missing, bad entries are skipped."""
    obj = value if isinstance(value, dict) else {}
    order = obj.get("order")
    raw_posts = obj.get("posts")
    posts: dict[str, Post] = {}
    if isinstance(raw_posts, dict):
        for key, raw in raw_posts.items():
            post = to_post(raw)
            if post is not None:
                posts[key] = post
    return PostList(
        order=[o for o in order if isinstance(o, str)] if isinstance(order, list) else [],
        posts=posts,
        has_next=obj.get("has_next") is True,
        next_post_id=_str(obj, "next_post_id"),
        prev_post_id=_str(obj, "prev_post_id"),
    )


def to_user(value: object) -> User | None:
    if not isinstance(value, dict):
        return None
    user_id = value.get("id")
    if not isinstance(user_id, str) or not user_id:
        return None
    return User(id=user_id, username=_str(value, "username"), is_bot=value.get("is_bot") is True)


def to_users(value: object) -> list[User]:
    items = value if isinstance(value, list) else []
    return [u for u in (to_user(item) for item in items) if u is not None]


def to_frame(value: object) -> WsFrame | None:
    """A WebSocket frame from a decoded JSON value; None when it is not an object."""
    if not isinstance(value, dict):
        return None
    data = value.get("data")
    return WsFrame(
        event=_str(value, "event"),
        seq=_opt_int(value, "seq"),
        data=data if isinstance(data, dict) else None,
        status=_str(value, "status"),
        seq_reply=_opt_int(value, "seq_reply"),
    )
