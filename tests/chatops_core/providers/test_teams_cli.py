"""``chatops teams manifest``: the Teams app package of the bot, as Teams would read it."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatops_core.cli import main
from chatops_core.commands.grammar import CommandName
from tests.fakes.teams_server import FakeTeams


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams() as teams:
        yield teams


def _config(
    tmp_path: Path, fake: FakeTeams, *, public_url: str = "https://chatops.example.com", bot: bool = True
) -> str:
    bot_keys = (
        f"""
app_id = "{fake.app_id}"
app_password = "{fake.app_password}"
token_url = "{fake.token_url}"
openid_metadata_url = "{fake.openid_metadata_url}"
"""
        if bot
        else ""
    )
    config = tmp_path / "chatops.toml"
    config.write_text(
        f"""
[chatops]
public_url = "{public_url}"

[providers.ops]
type = "teams"
outgoing_webhook_secret = "{fake.outgoing_secret}"
{bot_keys}
[providers.ops.channels.incidents]
webhook_url = "{fake.workflow_url("incidents")}"
"""
    )
    return str(config)


def _png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGBA pixels of a PNG written without filters (as ours are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 6)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    pixels = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0
        pixels += [tuple(row[1 + x * 4 : 5 + x * 4]) for x in range(width)]
    return width, height, pixels


def test_manifest_package_is_what_teams_reads(
    tmp_path: Path, fake: FakeTeams, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATOPS_CONFIG", "")
    out = tmp_path / "app.zip"
    assert main(["teams", "manifest", "--config", _config(tmp_path, fake), "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color = _png(archive.read("color.png"))
        outline = _png(archive.read("outline.png"))
    version = manifest["manifestVersion"]
    assert manifest["$schema"].endswith(f"/v{version}/MicrosoftTeams.schema.json")
    assert manifest["id"] == fake.app_id
    (bot,) = manifest["bots"]
    assert bot["botId"] == fake.app_id
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    (commands,) = bot["commandLists"]
    assert sorted(commands["scopes"]) == ["groupChat", "personal", "team"]
    titles = [c["title"] for c in commands["commands"]]
    assert len(titles) <= 10 and {"declare", "ack", "resolve", "status", "help"} <= set(titles)
    assert set(titles) <= {word.value for word in CommandName}
    assert all(len(c["title"]) <= 32 and 0 < len(c["description"]) <= 128 for c in commands["commands"])
    assert manifest["validDomains"] == ["chatops.example.com"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert all(
        manifest["developer"][k].startswith("https://") for k in ("websiteUrl", "privacyUrl", "termsOfUseUrl")
    )
    # Icons: 192x192 in full colour; 32x32 white on transparent.
    assert color[:2] == (192, 192) and all(p[3] == 255 for p in color[2])
    width, height, pixels = outline
    assert (width, height) == (32, 32)
    assert {p for p in pixels} == {(255, 255, 255, 255), (0, 0, 0, 0)}
    printed = capsys.readouterr().out
    assert "https://chatops.example.com/webhooks/ops" in printed and fake.app_password not in printed


@pytest.mark.parametrize(
    ("public_url", "bot", "instance", "said"),
    [
        ("https://chatops.example.com", False, None, "runs no bot"),
        ("http://chatops.example.com", True, None, "public_url must be"),
        ("https://chatops.example.com", True, "other", "no Teams instance 'other'"),
    ],
)
def test_manifest_refuses_what_teams_could_not_use(
    tmp_path: Path,
    fake: FakeTeams,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
    public_url: str,
    bot: bool,
    instance: str | None,
    said: str,
) -> None:
    monkeypatch.setenv("CHATOPS_CONFIG", "")
    out = tmp_path / "app.zip"
    argv = [
        "teams",
        "manifest",
        "--config",
        _config(tmp_path, fake, public_url=public_url, bot=bot),
        "--out",
        str(out),
    ]
    if instance:
        argv += ["--instance", instance]
    assert main(argv) == 2
    assert said in capsys.readouterr().err
    assert not out.exists()
