"""dirsync's CSV import, dry run, command line, report mail and retention, on SQLite."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select, update
from sqlmodel import Session
from typer.testing import CliRunner

from bridge.cli import app
from bridge.cli.dirsync import dirsync_command
from bridge.db.clock import utcnow
from bridge.db.engine import open_engine, upgrade
from bridge.mt.tables import Mail
from bridge.tenants.directory_tables import SyncRun
from bridge.tenants.tables import Alias, User
from dirsync.config import DirsyncConfig, parse_config
from dirsync.csv_source import CsvFormatError, parse_csv
from dirsync.run import EXIT_CONFIG, EXIT_FAILED, EXIT_REFUSED, run_sync
from tests.helpers import acme_customer
from tests.peers.net import free_port

DATA = Path(__file__).resolve().parents[1] / "data" / "dirsync"
HEADER = "external_id,email,aliases,mobile,display_name,sender_id,cost_centre,profile,enabled"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    eng = open_engine(url)
    upgrade(eng)
    acme_customer(eng, "sales", "standard")
    eng.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Engine:
    return open_engine(db_url)


def cfg(**extra: object) -> DirsyncConfig:
    return parse_config({"customer": "acme", **extra})


def settings_file(tmp_path: Path, db_url: str, dirsync: str) -> Path:
    """The bridge's settings file with `dirsync` as its [dirsync] table (and sub-tables)."""
    path = tmp_path / "bridge.toml"
    path.write_text(f'database_url = "{db_url}"\n[sandbox]\nenabled = true\n{dirsync}')
    return path


def csv_file(tmp_path: Path, rows: list[str], name: str = "u.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows, f"#END,{len(rows)}"]) + "\n")
    return path


def rows(engine: Engine) -> dict[str, User]:
    with Session(engine) as s:
        out = {u.address: u for u in s.execute(select(User)).scalars()}
        s.expunge_all()
    return out


def test_csv_import_maps_and_validates(tmp_path: Path, engine: Engine) -> None:
    outcome = run_sync(cfg(), engine, csv=DATA / "users.csv")
    assert outcome.status == "applied", outcome.message
    users = rows(engine)
    assert set(users) == {
        "anna.alpha@corp.example",
        "bert.beta@corp.example",
        "dora.delta@corp.example",
    }
    anna = users["anna.alpha@corp.example"]
    assert anna.settings == {"sender_id": "CORP", "cost_centre": "CC-4711"} and anna.enabled
    assert anna.mobile == "+491701111111" and anna.external_id == "emp-0001"
    assert users["dora.delta@corp.example"].external_id == "dora.delta@corp.example"
    with Session(engine) as s:
        got = {a.address for a in s.execute(select(Alias)).scalars()}
    assert got == {"anna@legacy.example", "a.alpha@corp.example"}
    assert outcome.plan is not None
    assert [p.ref for p in outcome.plan.problems] == ["users.csv line 4"]  # carl's mobile "12"
    again = run_sync(cfg(), engine, csv=DATA / "users.csv")
    assert again.status == "unchanged"


def test_csv_format_errors_reject_the_whole_file(tmp_path: Path, engine: Engine) -> None:
    good = (DATA / "users.csv").read_text()
    cut = "\n".join(good.splitlines()[:3]) + "\n"
    with pytest.raises(CsvFormatError, match="#END"):
        parse_csv(cut, name="x.csv", region="DE")
    with pytest.raises(CsvFormatError, match="says 9 rows"):
        parse_csv(good.replace("#END,4", "#END,9"), name="x.csv", region="DE")
    with pytest.raises(CsvFormatError, match="header"):
        parse_csv(good.replace("external_id,email", "email,external_id"), name="x.csv", region="DE")
    with pytest.raises(CsvFormatError, match="columns"):
        parse_csv(f"{HEADER}\na,b@c.example\n#END,1\n", name="x.csv", region="DE")
    path = tmp_path / "cut.csv"
    path.write_text(cut)
    outcome = run_sync(cfg(), engine, csv=path)
    assert outcome.exit_code == EXIT_FAILED and "truncated" in outcome.message
    assert rows(engine) == {}


def test_unknown_profile_is_reported_not_applied(tmp_path: Path, engine: Engine) -> None:
    path = csv_file(tmp_path, ["e1,a@corp.example,,,A,,,nosuch,yes"])
    outcome = run_sync(cfg(), engine, csv=path)
    assert outcome.status == "applied" and rows(engine)["a@corp.example"].profile_id is None
    assert outcome.plan is not None and "unknown profile" in outcome.plan.problems[0].message


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sync(cfg(), engine, csv=csv_file(tmp_path, ["e1,a@corp.example,,0170 1111111,A,,,,yes"]))
    changed = csv_file(
        tmp_path, ["e1,a@corp.example,,0170 2222222,A,,,,yes", "e2,b@corp.example,,,B,,,,yes"]
    )
    url = str(engine.url)
    conf = settings_file(tmp_path, url, '[dirsync]\ncustomer = "acme"\n')
    assert dirsync_command(conf, changed, True, False, None, False) == 0
    out = capsys.readouterr().out
    assert "add     b@corp.example [e2]" in out
    assert "mobile: +491701111111 → +491702222222" in out
    assert rows(engine)["a@corp.example"].mobile == "+491701111111" and len(rows(engine)) == 1
    with Session(engine) as s:
        assert len(s.execute(select(SyncRun)).scalars().all()) == 1  # only the first real run


def test_command_is_quiet_off_a_terminal_and_explains_failures(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = settings_file(tmp_path, db_url, '[dirsync]\ncustomer = "acme"\nlog_file = "x"\n')
    assert dirsync_command(conf, DATA / "users.csv", False, False, None, False) == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dirsync: {conf}: dirsync.log_file: unknown key"]
    log_file = tmp_path / "dirsync.log"
    settings_file(
        tmp_path,
        db_url,
        f'[dirsync]\ncustomer = "acme"\n[dirsync.report]\nlog_file = "{log_file}"\n',
    )
    assert dirsync_command(conf, DATA / "users.csv", False, False, None, False) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    log = log_file.read_text()
    assert "status=applied" in log and "added=3" in log
    settings_file(tmp_path, db_url, '[dirsync]\ncustomer = "nobody"\n')
    assert dirsync_command(conf, DATA / "users.csv", False, False, None, False) == EXIT_CONFIG
    assert (
        capsys.readouterr().err.strip()
        == "dirsync: failed: customer: 'nobody' does not exist in the database"
    )


def test_config_errors_name_the_key() -> None:
    from bridge.errors import ConfigError

    cases: dict[str, dict[str, Any]] = {
        "ldap.page_size": {"ldap": {"url": "ldaps://dc", "bind_dn": "x", "password_env": "P",
                                    "base_dns": ["dc=x"], "page_size": 5000}},
        "ldap.starttls": {"ldap": {"url": "ldap://dc", "bind_dn": "x", "password_env": "P",
                                   "base_dns": ["dc=x"]}},
        "ldap.password_env": {"ldap": {"url": "ldaps://dc", "bind_dn": "x", "base_dns": ["dc=x"]}},
        "ldap.preset": {"ldap": {"url": "ldaps://dc", "bind_dn": "x", "password_env": "P",
                                 "base_dns": ["dc=x"], "preset": "novell"}},
        "ldap.mapping.colour": {"ldap": {"url": "ldaps://dc", "bind_dn": "x", "password_env": "P",
                                         "base_dns": ["dc=x"], "mapping": {"colour": "x"}}},
        "safety.max_disable_percent": {"safety": {"max_disable_percent": 150}},
        "exclude.address_patterns": {"exclude": {"address_patterns": ["(("]}},
        "profiles[0].profile": {"profiles": [{"group": "cn=x"}]},
        "report.when": {"report": {"when": "sometimes"}},
    }  # fmt: skip
    for key, data in cases.items():
        with pytest.raises(ConfigError) as err:
            cfg(**data)
        assert str(err.value).startswith(key), (key, str(err.value))
        assert "\n" not in str(err.value)


def test_mass_disable_cap_and_report_mail(tmp_path: Path, engine: Engine) -> None:
    received: list[bytes] = []

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append(envelope.content)  # type: ignore[attr-defined]
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        report = {"mail_to": ["admin@corp.example"], "smtp_host": "127.0.0.1", "smtp_port": port}
        config = cfg(report=report, safety={"max_disable_count": 2})
        many = [f"e{i},u{i}@corp.example,,,U{i},,,,yes" for i in range(10)]
        from dirsync.report import send_mail, should_mail

        first = run_sync(config, engine, csv=csv_file(tmp_path, many))
        assert should_mail(config.report, first)
        asyncio.run(send_mail(config.report, first))
        refused = run_sync(config, engine, csv=csv_file(tmp_path, many[:7]))
        assert refused.exit_code == EXIT_REFUSED and "max_disable_count=2" in refused.message
        asyncio.run(send_mail(config.report, refused))
    finally:
        controller.stop()
    assert len(received) == 2
    mail = message_from_bytes(received[1])
    assert mail["Subject"] == "dirsync acme: refused"
    parts = {p.get_content_type(): cast(bytes, p.get_payload(decode=True)).decode()
             for p in mail.walk() if not p.is_multipart()}  # fmt: skip
    assert "--allow-mass-changes" in parts["text/plain"]
    assert "disable u7@corp.example [e7]" in parts["text/plain"]
    assert "<!DOCTYPE html>" in parts["text/html"] and "refused" in parts["text/html"]
    assert all(u.enabled for u in rows(engine).values())


def test_retention_deletes_or_retires_old_disabled_rows(tmp_path: Path, engine: Engine) -> None:
    two = csv_file(
        tmp_path,
        [
            "e1,a@corp.example,x@corp.example,,A,,,,yes",
            "e2,b@corp.example,,,B,,,,yes",
            "e3,c@corp.example,,,C,,,,yes",
        ],
    )
    config = cfg(safety={"max_disable_percent": 100, "retention_days": 30})
    assert run_sync(config, engine, csv=two).status == "applied"
    users = rows(engine)
    with Session(engine) as s, s.begin():
        s.add(
            Mail(
                id="m1",
                envelope_from="b@corp.example",
                user_id=users["b@corp.example"].id or 0,
                raw=b"",
            )
        )
    only_c = csv_file(tmp_path, ["e3,c@corp.example,,,C,,,,yes"])
    assert run_sync(config, engine, csv=only_c).plan.counts()["disabled"] == 2  # type: ignore[union-attr]
    assert run_sync(config, engine, csv=only_c).status == "unchanged"  # retention not reached
    with Session(engine) as s, s.begin():
        s.execute(
            update(User)
            .values(disabled_at=utcnow() - timedelta(days=31))
            .where(User.enabled.is_(False))  # type: ignore[attr-defined]
        )
    outcome = run_sync(config, engine, csv=only_c)
    assert outcome.status == "applied" and (outcome.deleted, outcome.retired) == (1, 1)
    left = rows(engine)
    assert set(left) == {"c@corp.example", f"b@corp.example#retired-{users['b@corp.example'].id}"}
    with Session(engine) as s:
        assert s.execute(select(Alias)).scalars().all() == []
    # the released address can be given to a new directory user
    back = csv_file(tmp_path, ["e3,c@corp.example,,,C,,,,yes", "e9,b@corp.example,,,B2,,,,yes"])
    assert run_sync(config, engine, csv=back).status == "applied"
    assert rows(engine)["b@corp.example"].external_id == "e9"


def test_csv_needs_no_ldap_table_but_ldap_does(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = settings_file(tmp_path, db_url, '[dirsync]\ncustomer = "acme"\n')
    assert dirsync_command(conf, None, False, False, None, False) == EXIT_CONFIG
    assert capsys.readouterr().err == (
        f"dirsync: no [dirsync.ldap] table in {conf}; add one or pass --csv FILE\n"
    )
    shutil.copy(DATA / "users.csv", tmp_path / "users.csv")
    assert dirsync_command(conf, tmp_path / "users.csv", False, False, None, False) == 0


def test_the_mailsms_command_reads_the_dirsync_table_of_the_settings_file(
    tmp_path: Path, db_url: str
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["dirsync", "--help"])
    assert result.exit_code == 0
    for option in ("--config", "--csv", "--dry-run", "--allow-mass-changes", "--database-url"):
        assert option in result.output
    conf = settings_file(tmp_path, db_url, '[dirsync]\ncustomer = "acme"\n')
    args = ["dirsync", "-c", str(conf), "--csv", str(DATA / "users.csv")]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "add     " in dry.stdout and dry.stderr == ""
    assert runner.invoke(app, args).exit_code == 0
    with Session(open_engine(db_url)) as s:
        assert len(s.execute(select(User)).scalars().all()) == 3
    # the same file as every other command's -c, also through MAILSMS_CONFIG
    listed = runner.invoke(app, ["user", "list", "-c", str(conf)])
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 3
    from_env = runner.invoke(app, args[:1] + args[3:], env={"MAILSMS_CONFIG": str(conf)})
    assert from_env.exit_code == 0, from_env.output
    bad = runner.invoke(app, ["dirsync", "-c", str(tmp_path / "missing.toml")])
    assert bad.exit_code == EXIT_CONFIG


def test_settings_without_a_dirsync_table_say_how_to_add_one(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = settings_file(tmp_path, db_url, "")
    assert dirsync_command(conf, DATA / "users.csv", False, False, None, False) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"dirsync: {conf}: no [dirsync] table; add one (see examples/dirsync/")
    for key in ("database_url", "bridge_config"):
        settings_file(tmp_path, db_url, f'[dirsync]\ncustomer = "acme"\n{key} = "x"\n')
        assert dirsync_command(conf, DATA / "users.csv", False, False, None, False) == EXIT_CONFIG
        assert f"dirsync.{key}: not in [dirsync]; the bridge's own settings apply" in (
            capsys.readouterr().err
        )
    checked = CliRunner().invoke(app, ["config", "check", "-c", str(conf)])
    assert checked.exit_code == 2 and "dirsync.bridge_config: not in [dirsync]" in checked.stderr


def test_a_separate_dirsync_file_still_works_with_a_deprecation_warning(
    tmp_path: Path, db_url: str
) -> None:
    conf = tmp_path / "dirsync.toml"
    conf.write_text('customer = "acme"\n')
    runner = CliRunner()
    args = ["dirsync", "-c", str(conf), "--csv", str(DATA / "users.csv"), "--database-url", db_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    warning = result.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"dirsync: warning: {conf}: a separate")
    assert "[dirsync.ldap]" in warning[0] and "mailsms dirsync -c" in warning[0]
    assert runner.invoke(app, [*args, "--dry-run"]).exit_code == 0
    with Session(open_engine(db_url)) as s:
        assert len(s.execute(select(User)).scalars().all()) == 3


def test_csv_mobiles_are_read_as_the_bridge_reads_them(tmp_path: Path, engine: Engine) -> None:
    path = csv_file(
        tmp_path,
        [
            "e1,a@corp.example,,49 170 1234567,A,,,,yes",  # international, without the +
            "e2,b@corp.example,,+49 30 12345678,B,,,,yes",  # a landline
        ],
    )
    outcome = run_sync(cfg(), engine, csv=path)
    assert outcome.status == "applied" and outcome.plan is not None
    assert rows(engine)["a@corp.example"].mobile == "+491701234567"
    assert rows(engine)["b@corp.example"].mobile is None
    assert [p.ref for p in outcome.plan.problems] == ["u.csv line 3"]


def test_a_row_with_an_invalid_mail_leaves_its_user_unchanged(
    tmp_path: Path, engine: Engine
) -> None:
    good = ["e1,a@corp.example,,,A,,,,yes", "e2,b@corp.example,,,B,,,,yes"]
    assert run_sync(cfg(), engine, csv=csv_file(tmp_path, good)).status == "applied"
    typo = [good[0], "e2,b@corp example,,,B,,,,yes"]
    outcome = run_sync(cfg(), engine, csv=csv_file(tmp_path, typo))
    assert outcome.status == "unchanged" and outcome.plan is not None
    assert [p.describe() for p in outcome.plan.problems] == [
        "u.csv line 3: invalid e-mail 'b@corp example'; row skipped; its user is left unchanged"
    ]
    assert rows(engine)["b@corp.example"].enabled
