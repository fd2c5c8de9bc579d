"""The `[http]` table: host:port, HTTPS only with both files, on by default only without a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.http.settings import HttpSettings, split_listen
from bridge.settings import load_settings


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8025", ("127.0.0.1", 8025)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("monitor.example.com:8025", ("monitor.example.com", 8025)),
    ],
)
def test_listen_is_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    assert split_listen(listen) == expected
    settings = HttpSettings(listen=listen)
    assert (settings.host, settings.port) == expected


@pytest.mark.parametrize("listen", ["8025", "127.0.0.1", ":8025", "127.0.0.1:http", "[::1]:70000"])
def test_a_listen_without_host_and_port_is_refused_with_an_example(listen: str) -> None:
    with pytest.raises(ValidationError, match=r"expected host:port such as 127\.0\.0\.1:8025"):
        HttpSettings(listen=listen)


def test_tls_needs_both_files() -> None:
    with pytest.raises(ValidationError, match="set both"):
        HttpSettings(tls_cert=Path("/etc/mailsms/http.crt"))
    both = HttpSettings(tls_cert=Path("a.crt"), tls_key=Path("a.key"))
    assert both.tls_key == Path("a.key")


def test_on_in_the_embedded_default_off_unless_a_file_enables_it(tmp_path: Path) -> None:
    embedded = load_settings(None, environ={}).http
    assert embedded.enabled and embedded.listen == "127.0.0.1:8025"
    path = tmp_path / "bridge.toml"
    path.write_text("[sandbox]\nenabled = true\n", encoding="utf-8")
    assert not load_settings(path, environ={}).http.enabled
    path.write_text('[sandbox]\nenabled = true\n[http]\nenabled = true\nlisten = "[::1]:9025"\n')
    assert load_settings(path, environ={}).http.port == 9025


def test_trusted_proxies_are_addresses_or_networks_in_the_form_uvicorn_matches() -> None:
    """uvicorn takes `10.0.0.5/24` (host bits set) for a name and never matches it; the
    setting gives it `10.0.0.0/24`. A name or `*` (trust every client's header) is refused."""
    settings = HttpSettings(trusted_proxies=("10.0.0.5/24", " ::1 ", "192.0.2.7"))
    assert settings.proxy_networks() == ["10.0.0.0/24", "::1/128", "192.0.2.7/32"]
    assert HttpSettings().proxy_networks() == []
    for wrong in ("*", "proxy.example.com", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match=r"trusted_proxies: .* is not an IP network"):
            HttpSettings(trusted_proxies=(wrong,))
