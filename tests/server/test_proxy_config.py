"""The configuration of the proxy role: routes and proxy settings in the TOML file, the
Python routing hook (``--routes``), and what cannot work together."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipwire.aio.listen import ListenSpec
from sipwire.server.config import ConfigError, resolve_config
from sipwire.server.proxy import load_hook, routing_table


def test_routes_and_proxy_settings_from_the_toml_file(tmp_path: Path) -> None:
    (tmp_path / "hook.py").write_text("def route(request, ctx):\n    return None\n")
    file = tmp_path / "sipwire.toml"
    file.write_text(
        'domains = ["example.com"]\n'
        "[proxy]\n"
        'hook = "hook.py"\n'
        'forking = "parallel"\n'
        'trusted = ["192.0.2.10"]\n'
        "[[routes]]\n"
        'name = "pstn"\n'
        'prefixes = ["+49"]\n'
        'gateways = ["sip:gw1.carrier.example", "sip:gw2.carrier.example"]\n'
        "[default]\n"
        'gateways = ["sip:upstream.example"]\n'
    )
    config = resolve_config(file, {"stateless": True})
    assert config.routes_hook == tmp_path / "hook.py" and config.stateless
    assert config.forking == "parallel" and config.trusted == ("192.0.2.10",)
    [pstn] = config.routes
    assert pstn.name == "pstn" and pstn.gateways[1] == "sip:gw2.carrier.example"
    assert config.default_route is not None
    table = routing_table(config, config.domains)
    assert table.hook is not None and table.domains == frozenset({"example.com"})
    with pytest.raises(ConfigError, match="stateless is a mode of the proxy"):
        resolve_config(file, {"stateless": True, "proxy": False})
    with pytest.raises(ConfigError, match="fixed ports"):
        resolve_config(None, {"workers": 2, "listen": (ListenSpec("udp", "127.0.0.1", 0),)})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x = 1\n", "defines no function route"),
        ("async def route(request, ctx):\n    return None\n", "must be a plain def"),
        ("def route(:\n", "SyntaxError"),
    ],
)
def test_a_bad_routing_hook_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    hook = tmp_path / "routes.py"
    hook.write_text(text)
    with pytest.raises(ConfigError, match=says):
        load_hook(hook)
    with pytest.raises(ConfigError, match="no such file"):
        load_hook(tmp_path / "missing.py")
