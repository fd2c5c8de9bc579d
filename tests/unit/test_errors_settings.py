"""The reply table and settings validation."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from bridge.errors import REPLIES, ConfigError, Reject, reply
from bridge.settings import load_settings


@pytest.mark.parametrize("kind", sorted(REPLIES))
def test_every_reply_has_matching_codes_and_renders(kind: str) -> None:
    r = REPLIES[kind]
    assert str(r.code)[0] == r.status[0], "basic and enhanced code disagree"
    names = {name for _, name, _, _ in string.Formatter().parse(r.text) if name}
    line = reply(kind, **dict.fromkeys(names, "x"))
    assert re.fullmatch(r"\d{3} \d\.\d{1,3}\.\d{1,3} \S.*", line)
    if r.code >= 400 and r.code not in (421, 530):  # 421/530: standard texts (RFC 5321/3207)
        assert ";" in r.text or "retry" in r.text, "a refusal says what to do"


def test_reject_carries_its_reply() -> None:
    assert Reject("unknown_sender", sender="x@y").reply.startswith("550 5.7.1 Sender <x@y>")
    with pytest.raises(KeyError):
        Reject("no_such_kind")


def test_embedded_default_has_sandbox_route_and_demo() -> None:
    settings = load_settings(None, environ={})
    assert settings.demo and settings.sandbox.enabled
    assert [s.name for s in settings.smsc] == ["sandbox"]
    assert settings.routes[-1].prefix == ""


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "bridge.toml"
    settings = load_settings(example, environ={"MAILSMS_SMSC_A_PASSWORD": "s3cret"})
    assert settings.smsc[0].password == "s3cret"
    assert not settings.demo


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[smtp]\nport = "abc"\n', "smtp.port: Input should be a valid integer"),
        ("colour = 1\n", "colour: unknown setting"),
        ("[smtp]\ndomains = []\n", "domains: expected at least one domain"),
        ('[[smsc]]\nname="a"\nsystem_id="x"\n', 'the last [[routes]] must have prefix = ""'),
        ('[[smsc]]\nname="a"\nsystem_id="x"\npassword_env="NOPE"\n', "NOPE is not set"),
        # the transport's own timings (SmppConfig) are not [[smsc]] settings
        ('[[smsc]]\nname="a"\nsystem_id="x"\nbind_wait=1\n', "smsc.0.bind_wait: unknown setting"),
        ("[smtp\n", "not valid TOML"),
        # a claimed order must have time for its parts' answers: 2 x 30 s + 5 s
        (
            '[dispatch]\nlease = 60\n[[smsc]]\nname="a"\nsystem_id="x"\n'
            '[[routes]]\nprefix=""\ntransports=["a"]\n',
            "dispatch: lease = 60 s is too short for [[smsc]] 'a' (response_timeout = 30 s)",
        ),
        ("[dispatch]\nlease = 14\n[sandbox]\nenabled = true\n", "at least 15 s"),
    ],
)
def test_invalid_settings_stop_with_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_database_url_from_environment(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"MAILSMS_DATABASE_URL": "sqlite:///x.db"})
    assert settings.database_url == "sqlite:///x.db"


def test_every_reply_kind_is_used_by_the_code() -> None:
    """No dead rows in the reply table: each kind is raised or sent somewhere."""
    root = Path(__file__).parents[2] / "bridge"
    code = "\n".join(
        p.read_text(encoding="utf-8") for p in root.rglob("*.py") if p.name != "errors.py"
    )
    unused = [kind for kind in REPLIES if f'"{kind}"' not in code]
    assert unused == []


def test_database_url_scheme_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('database_url = "mysql://x/y"\n[sandbox]\nenabled = true\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="database_url: expected sqlite:///"):
        load_settings(path, environ={})


def test_admin_commands_report_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bridge.cli import app

    path = tmp_path / "bridge.toml"
    path.write_text(
        'database_url = "postgresql://nobody@127.0.0.1:1/x"\n[sandbox]\nenabled = true\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["user", "list", "-c", str(path)])
    assert result.exit_code == 1
    assert "cannot open the database" in result.output and "Traceback" not in result.output
