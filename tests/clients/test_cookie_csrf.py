"""The server's CSRF rule, as the web app meets it: a cookie session changes nothing without
`X-Requested-With: XMLHttpRequest`; header tokens are not concerned."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _post(seed: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    body = {"channel_id": seed["channel"]["id"], "message": "csrf?"}
    request = urllib.request.Request(
        seed["url"] + "/api/v4/posts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_cookie_session_needs_the_requested_with_header(emulator_seed: dict[str, Any]) -> None:
    token = emulator_seed["users"]["alice"]["token"]
    cookie = {"Cookie": f"MMAUTHTOKEN={token}"}
    status, body = _post(emulator_seed, cookie)
    assert (status, body["id"]) == (401, "api.context.session_expired.app_error")
    status, body = _post(emulator_seed, {**cookie, "X-Requested-With": "XMLHttpRequest"})
    assert status == 201
    assert body["user_id"] == emulator_seed["users"]["alice"]["id"]
    status, body = _post(emulator_seed, {"Authorization": f"Bearer {token}"})
    assert status == 201
    with urllib.request.urlopen(
        urllib.request.Request(emulator_seed["url"] + "/api/v4/users/me", headers=cookie),
        timeout=5,
    ) as response:  # reads need no such header
        assert json.loads(response.read())["id"] == emulator_seed["users"]["alice"]["id"]
