"""Dev tools found per platform: what `chatops run` starts when nothing is configured."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chatops_core.errors import ConfigError
from chatops_core.models import Actor
from chatops_core.providers import devtools
from chatops_core.providers.devtools import DevTools, start_playgrounds


class _Playground:
    def __init__(self, data_dir: Path | None = None, out: Any = None) -> None:
        self.data_dir = data_dir
        self.running = False

    @property
    def url(self) -> str:
        return "http://127.0.0.1:1"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def config_toml(self, instance: str) -> str:
        return f"[providers.{instance}]\n"


class _NoDataDir(_Playground):
    def __init__(self, out: Any = None) -> None:
        super().__init__(None, out)


class _NeedsCheckout:
    def __init__(self, out: Any = None) -> None:
        raise ConfigError("this playground runs from a source checkout")


def _module(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_a_module_without_instance_or_order_gets_the_defaults() -> None:
    tools = DevTools("chat", _module("chat.devtools", simulated_request=lambda *a, **k: (b"", {}, "")))
    assert (tools.instance, tools.order, tools.has_playground) == ("chat", 100, False)
    assert tools.default_user_id == "simulator"
    assert len(tools.new_trigger()) == 32
    # An answer shown with no platform's own rendering: a heading and its text.
    assert tools.answer_lines({"text": "INC-1 acknowledged\nby alice"}, "incidents", {}) == [
        "bot:",
        "INC-1 acknowledged",
        "by alice",
    ]


def test_simulated_request_passes_what_simulate_knows() -> None:
    seen: dict[str, Any] = {}

    def simulated_request(settings: Any, text: str, **kwargs: Any) -> tuple[bytes, dict[str, str], str]:
        seen.update(kwargs, text=text)
        return b"body", {"X-Sig": "1"}, "application/json"

    tools = DevTools("chat", _module("chat.devtools", INSTANCE="c", simulated_request=simulated_request))
    answer = tools.simulated_request(
        None,  # type: ignore[arg-type]
        "ack INC-1",
        user=Actor(user_id="U1", user_name="alice"),
        channel_id=None,
        channel_name="incidents",
        reply_url="http://127.0.0.1:1/r",
        trigger="t",
        command="/im",
    )
    assert answer == (b"body", {"X-Sig": "1"}, "application/json")
    assert seen["text"] == "ack INC-1" and seen["command"] == "/im" and seen["channel_id"] is None


def test_every_playground_that_can_run_is_started_and_the_others_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = {
        "slack": DevTools("slack", _module("s.devtools", INSTANCE="slack", ORDER=0, Playground=_Playground)),
        "mattermost": DevTools("mattermost", _module("m.devtools", INSTANCE="mm", Playground=_NoDataDir)),
        "irc": DevTools("irc", _module("i.devtools", Playground=_NeedsCheckout)),
        "teams": DevTools("teams", _module("t.devtools")),
    }
    monkeypatch.setattr(devtools, "discover_devtools", lambda: found)
    skipped: list[tuple[str, str]] = []
    started = start_playgrounds(tmp_path, skipped=lambda kind, why: skipped.append((kind, str(why))))
    assert list(started) == ["slack", "mm"]
    assert all(p.running for p in started.values())  # type: ignore[attr-defined]
    # A playground that keeps state is given the data directory.
    assert started["slack"].data_dir == tmp_path  # type: ignore[attr-defined]
    assert skipped == [("irc", "this playground runs from a source checkout")]
