"""CURVE key files: made private, never overwritten, read strictly; allowed keys by directory."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest
import zmq

from protocol import curve

if TYPE_CHECKING:
    from pathlib import Path


def test_make_keys_is_private_and_idempotent(tmp_path: Path) -> None:
    made = curve.make_keys(tmp_path)
    names = sorted(str(p.relative_to(tmp_path)) for p, _ in made)
    assert names == [
        "keys/allowed-gateways/gateway.key",
        "keys/gateway.key",
        "keys/gateway.key_secret",
        "keys/worker.key",
        "keys/worker.key_secret",
    ]
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for path, _ in made:
        assert not stat.S_IMODE(path.stat().st_mode) & 0o077, path
    before = {p: p.read_bytes() for p, _ in made}
    assert not any(new for _, new in curve.make_keys(tmp_path))
    assert {p: p.read_bytes() for p in before} == before
    keys = curve.keys_dir(tmp_path)
    pair = curve.load_pair(keys, curve.GATEWAY_KEY)
    assert curve.allowed_keys(keys / curve.ALLOWED_GATEWAYS) == {pair.public}


def test_bad_key_files_are_refused_or_skipped(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    with pytest.raises(curve.CurveError, match="No such file"):
        curve.load_pair(keys, "worker")
    (keys / "worker.key_secret").write_text("garbage")
    (keys / "worker.key_secret").chmod(0o600)
    with pytest.raises(curve.CurveError, match="not a CURVE secret key"):
        curve.load_pair(keys, "worker")
    (keys / "worker.key_secret").chmod(0o640)
    with pytest.raises(curve.CurveError, match="readable by others"):
        curve.load_pair(keys, "worker")
    (keys / "junk.key").write_text("not a key")
    public, _ = zmq.curve_keypair()
    (keys / "good.key").write_text(f'curve\n    public-key = "{public.decode()}"\n')
    assert curve.allowed_keys(keys) == {public}
    assert curve.allowed_keys(tmp_path / "missing") == set()
