"""bridge/files.py: the one way a file an administrator named is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError, InputError
from bridge.files import UnreadableFile, parse_json, parse_toml, read_text
from bridge.provision.file import TenantsError, load_tenants, read_members_csv
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


def test_toml_strings_with_a_control_character_are_refused_naming_the_key() -> None:
    text = '[[number]]\nnumber = "+4915550000001"\n[number.auto_reply]\ntext = "Hi\\u0000"\n'
    with pytest.raises(UnreadableFile) as caught:
        parse_toml(text, "numbers.toml")
    assert str(caught.value) == (
        "numbers.toml: number[0].auto_reply.text: control character U+0000 at position 3; remove it"
    )
    with pytest.raises(UnreadableFile, match=r"^a key in \(top level\): control character U\+001B"):
        parse_toml('"a\\u001bb" = 1\n')
    assert parse_toml('t = "tab\\tand\\nlines\\r\\n"\n') == {"t": "tab\tand\nlines\r\n"}
    with pytest.raises(UnreadableFile, match=r"^x\.toml: not valid TOML: "):
        parse_toml("[smtp\n", "x.toml")


def test_settings_and_tenants_files_say_which_key_holds_a_control_character(
    tmp_path: Path,
) -> None:
    settings = tmp_path / "bridge.toml"
    settings.write_text('[sandbox]\nenabled = true\n[smtp]\nhostname = "mx\\u0000"\n')
    with pytest.raises(
        ConfigError, match=r"bridge\.toml: smtp\.hostname: control character U\+0000"
    ):
        load_settings(settings, environ={})
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[[customers]]\nname = "acme\\u0007"\n')
    with pytest.raises(TenantsError) as caught:
        load_tenants(tenants, default_country="DE")
    assert caught.value.problems == [
        f"{tenants}: customers[0].name: control character U+0007 at position 5; remove it"
    ]


def test_list_members_from_a_csv_are_clean_one_line_names() -> None:
    members, problems = read_members_csv(
        "msisdn,first_name,last_name,dept\n+491701234567,An\x00na,M\x1bx\tY,Sa\x00les\n", "DE"
    )
    assert problems == []
    [m] = members
    assert (m.first_name, m.last_name, m.fields) == ("Anna", "Mx Y", {"dept": "Sales"})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"a": NaN}', "NaN is not a JSON value"),
        ("[Infinity, 1]", "Infinity is not a JSON value"),
        ('{"a": -Infinity}', "-Infinity is not a JSON value"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("[" * 101 + "]" * 101, "more than 100 levels"),  # every Python parses it
        ('{"a": ' * 101 + "1" + "}" * 101, "more than 100 levels"),
        ('{"text": "ok \\ud800"}', "text: an unpaired surrogate \\ud800"),
        ('{"a": [1, {"b": "\\udfff"}]}', "a[1].b: an unpaired surrogate \\udfff"),
        ('{"\\udc80": 1}', "a key in (top level): an unpaired surrogate \\udc80"),
        ("{", "not valid JSON"),
    ],
)
def test_json_beyond_rfc_8259_is_refused_with_a_sentence(text: str, says: str) -> None:
    """Python's parser takes NaN, Infinity and an unpaired surrogate escape (no character,
    and no database stores it: a 500 in the API before) and recurses on nesting."""
    with pytest.raises(UnreadableFile) as refused:
        parse_json(text, "t.json")
    assert str(refused.value).startswith("t.json: ") and says in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,  # tomllib recursed into a RecursionError: a traceback
        "a = " + "{ b = " * 400 + "1" + " }" * 400,  # the same, from about 330 inline tables
        "a = " + "[" * 100 + "]" * 100,  # below the parser's limit: ours
        "a = " + "{ b = " * 100 + "1" + " }" * 100,
    ],
)
def test_toml_nested_too_deeply_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(UnreadableFile) as refused:
        parse_toml(text, "bridge.toml")
    assert str(refused.value) == (
        "bridge.toml: nested too deeply to read (more than 100 levels of arrays and objects)"
    )


def test_toml_nested_to_the_limit_is_read() -> None:
    """The document is a table: with it, 99 arrays are 100 levels."""
    assert parse_toml("a = " + "[" * 99 + "]" * 99) == {"a": parse_json("[" * 99 + "]" * 99)}


def test_json_nested_to_the_limit_is_read() -> None:
    """The limit is ours, not the parser's (whose depth differs by Python version): a body
    gets the same answer on 3.11 and 3.13."""
    assert parse_json("[" * 100 + "]" * 100) is not None
    assert parse_json('{"a": [' * 50 + "]}" * 50) is not None


def test_json_with_surrogate_pairs_and_plain_values_is_read() -> None:
    assert parse_json('{"a": "\\ud83d\\ude00", "b": [1.5, null, true]}') == {
        "a": "😀",
        "b": [1.5, None, True],
    }
    assert parse_json(b'"x"') == "x"
