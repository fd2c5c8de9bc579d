"""bridge/files.py: the one way a file an administrator named is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import InputError
from bridge.files import UnreadableFile, read_text
from bridge.settings import load_settings


def test_utf8_with_or_without_a_byte_order_mark(tmp_path: Path) -> None:
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_bytes("msisdn,name\n+491701234567,Jürgen\n".encode())
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert read_text(plain) == read_text(marked) == "msisdn,name\n+491701234567,Jürgen\n"


def test_not_utf8_names_the_byte_and_its_line(tmp_path: Path) -> None:
    file = tmp_path / "excel.csv"
    file.write_bytes("msisdn,name\n+491701234567,Jürgen\n".encode("cp1252"))
    with pytest.raises(UnreadableFile) as caught:
        read_text(file)
    assert str(caught.value) == f"{file}: not UTF-8 text (byte 0xfc on line 2); save it as UTF-8"
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize("name", ["missing.toml", "a-directory"])
def test_missing_or_a_directory_says_so(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(UnreadableFile, match=r": cannot read: (No such file|Is a directory)"):
        read_text(tmp_path / name)


def test_settings_saved_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    file = tmp_path / "bridge.toml"
    file.write_bytes(b"\xef\xbb\xbf[smtp]\nport = 2626\n[sandbox]\nenabled = true\n")
    assert load_settings(file, environ={}).smtp.port == 2626
