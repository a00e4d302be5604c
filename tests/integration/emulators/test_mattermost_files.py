"""The emulator's files API: upload, download, info, file_ids on posts and in `posted`."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from emulators.mattermost.testing import Harness, open_harness, run

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


async def upload(
    h: Harness, user: str, name: str, data: bytes, channel_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("channel_id", channel_id or h.mm.channel.id)
    form.add_field("files", data, filename=name, content_type="application/octet-stream")
    async with h.session.post(
        h.mm.url + "/api/v4/files",
        data=form,
        headers={"Authorization": f"Bearer {h.token(user)}"},
    ) as response:
        return response.status, json.loads(await response.text())


async def download(h: Harness, user: str, path: str) -> tuple[int, bytes, Any]:
    async with h.session.get(
        h.mm.url + path, headers={"Authorization": f"Bearer {h.token(user)}"}
    ) as response:
        return response.status, await response.read(), response.headers


def test_upload_multipart_returns_file_infos_and_client_ids() -> None:
    async def body() -> None:
        async with open_harness() as h:
            form = aiohttp.FormData()
            form.add_field("files", b"hello", filename="notes.txt")
            form.add_field("channel_id", h.mm.channel.id)  # after the file: still accepted
            form.add_field("client_ids", "c1")
            async with h.session.post(
                h.mm.url + "/api/v4/files",
                data=form,
                headers={"Authorization": f"Bearer {h.token('alice')}"},
            ) as response:
                assert response.status == 201
                reply = json.loads(await response.text())
            assert reply["client_ids"] == ["c1"]
            [info] = reply["file_infos"]
            assert info["name"] == "notes.txt"
            assert info["extension"] == "txt"
            assert info["size"] == 5
            assert info["mime_type"] == "text/plain"
            assert info["post_id"] == ""
            assert info["user_id"] == h.mm.users["alice"].id

    run(body())


def test_upload_with_query_parameters_and_raw_body() -> None:
    async def body() -> None:
        async with open_harness() as h:
            reply = await h.rest("alice").call(
                "POST",
                f"/api/v4/files?channel_id={h.mm.channel.id}&filename=../x/shot.png",
                raw=PNG,
            )
            assert reply.status == 201, reply.text
            [info] = reply.json()["file_infos"]
            assert info["name"] == "shot.png"  # only the base name is kept
            assert info["mime_type"] == "image/png"
            assert info["size"] == len(PNG)

    run(body())


def test_upload_errors_size_permission_and_parameters() -> None:
    async def body() -> None:
        async with open_harness() as h:
            h.mm.set_max_file_size(10)
            status, err = await upload(h, "alice", "big.bin", b"x" * 11)
            assert status == 413
            assert err["id"] == "api.file.upload_file.too_large_detailed.app_error"
            status, _ = await upload(h, "alice", "ok.bin", b"x" * 10)
            assert status == 201
            # outsider is no member of the private channel
            status, err = await upload(h, "outsider", "a.txt", b"a", h.mm.other_channel.id)
            assert status == 403
            status, err = await upload(h, "alice", "a.txt", b"a", "not-an-id")
            assert status == 400
            reply = await h.rest(None).call(
                "POST", f"/api/v4/files?channel_id={h.mm.channel.id}&filename=a", raw=b"a"
            )
            assert reply.status == 401

    run(body())


def test_download_and_info_with_permissions() -> None:
    async def body() -> None:
        async with open_harness() as h:
            status, reply = await upload(h, "alice", "shot.png", PNG, h.mm.other_channel.id)
            assert status == 201
            file_id = reply["file_infos"][0]["id"]
            status, data, headers = await download(h, "alice", f"/api/v4/files/{file_id}")
            assert (status, data) == (200, PNG)
            assert headers["Content-Type"] == "image/png"
            # Unattached: only the uploader may read it.
            status, _, _ = await download(h, "claudebot", f"/api/v4/files/{file_id}")
            assert status == 403
            # Attached to a post in a channel the bot may read: now it may.
            post = await h.mm.post_as(
                "alice", "see", channel_id=h.mm.other_channel.id, file_ids=[file_id]
            )
            assert post["file_ids"] == [file_id]
            status, data, _ = await download(h, "claudebot", f"/api/v4/files/{file_id}")
            assert (status, data) == (200, PNG)
            info = await h.rest("claudebot").get(f"/api/v4/files/{file_id}/info")
            assert info.status == 200
            assert info.json()["post_id"] == post["id"]
            assert info.json()["size"] == len(PNG)
            status, _, _ = await download(h, "outsider", f"/api/v4/files/{file_id}")
            assert status == 403
            missing = await h.rest("alice").get("/api/v4/files/" + "a" * 26 + "/info")
            assert missing.status == 404
            assert missing.json()["id"] == "app.file_info.get.app_error"
            bad = await h.rest("alice").get("/api/v4/files/nope")
            assert bad.status == 400

    run(body())


def test_post_with_file_ids_has_metadata_files_and_posted_event_flags() -> None:
    async def body() -> None:
        async with open_harness() as h:
            ws = await h.ws("claudebot")
            await ws.next_event("hello")
            _, reply = await upload(h, "alice", "shot.png", PNG)
            mine = reply["file_infos"][0]["id"]
            _, reply = await upload(h, "bob", "bob.txt", b"b")
            bobs = reply["file_infos"][0]["id"]
            created = await h.rest("alice").post(
                "/api/v4/posts",
                {"channel_id": h.mm.channel.id, "message": "x", "file_ids": [mine, bobs]},
            )
            assert created.status == 201
            post = created.json()
            assert post["file_ids"] == [mine]  # another user's upload is not attached
            [meta] = post["metadata"]["files"]
            assert meta["id"] == mine
            assert meta["post_id"] == post["id"]
            event = await ws.next_event("posted")
            assert event["data"]["otherFile"] == "true"
            assert event["data"]["image"] == "true"
            wire = json.loads(event["data"]["post"])
            assert wire["file_ids"] == [mine]
            assert wire["metadata"]["files"][0]["name"] == "shot.png"
            # A file is attached once: a second post cannot claim it.
            again = await h.mm.post_as("alice", "again", file_ids=[mine])
            assert again["file_ids"] == []
            read = await h.rest("bob").get(f"/api/v4/posts/{post['id']}")
            assert read.json()["metadata"]["files"][0]["id"] == mine
            too_many = await h.rest("alice").post(
                "/api/v4/posts",
                {"channel_id": h.mm.channel.id, "message": "x", "file_ids": ["a" * 26] * 11},
            )
            assert too_many.status == 400

    run(body())
