"""open_store: choosing the backend from a URL, refusing bad ones clearly, and the package's boundaries."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

import storage
from storage import StoreError, open_store
from storage.postgres import session_conninfo
from tests.storage.conftest import POSTGRES_URL, Database, drop_schema, new_schema_name, require_postgres
from tests.storage.samples import at

STORAGE_DIR = Path(storage.__file__).parent


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@127.0.0.1/gradebot", "unknown store URL scheme 'mysql'"),
        ("redis://127.0.0.1:6379/0", "unknown store URL scheme 'redis'"),
        ("gradebot.db", "no scheme"),
        ("", "no scheme"),
        ("sqlite://gradebot.db", "sqlite:///path"),
        ("sqlite:///", "sqlite:///path"),
        ("sqlite:///gradebot.db?mode=ro", "sqlite:///path"),
    ],
)
async def test_unusable_urls_are_refused_with_a_clear_value_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await open_store(url)


async def test_the_error_for_an_unknown_scheme_does_not_echo_credentials() -> None:
    with pytest.raises(ValueError) as caught:
        await open_store("mssql://sa:Secr3t!@127.0.0.1/gradebot")
    assert "Secr3t" not in str(caught.value)


@pytest.mark.parametrize("schema", ["Gradebot", "grade-bot", "1st", "a; DROP TABLE x", ""])
async def test_schema_names_must_be_plain_identifiers(schema: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        await open_store(f"postgresql://postgres@127.0.0.1:1/test?schema={quote(schema)}")


async def test_schema_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        await open_store("postgresql://postgres@127.0.0.1:1/test?schema=one&schema=two")


async def test_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async with await open_store("sqlite:///data/nested/gradebot.db") as store:
        await store.save_token_cache("k", b"v", at(0))

    assert (tmp_path / "data" / "nested" / "gradebot.db").is_file()


async def test_sqlite_path_that_cannot_be_a_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="SQLite"):
        await open_store(f"sqlite:///{tmp_path}")


@pytest.mark.postgres
async def test_postgres_schema_from_the_url_holds_the_tables_and_other_url_options_survive() -> None:
    require_postgres()
    schema = new_schema_name()
    url = f"{POSTGRES_URL}?schema={schema}&application_name=gradebot-test&options=-c%20statement_timeout%3D4321"
    try:
        async with await open_store(url) as store:
            await store.save_token_cache("where", b"here", at(0))
            sessions = Database("postgres", POSTGRES_URL).execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'gradebot-test'"
            )
            assert sessions != [(0,)]
        assert Database("postgres", POSTGRES_URL, schema).execute("SELECT user_key FROM token_caches") == [("where",)]
    finally:
        drop_schema(schema)


def test_postgres_sessions_run_in_utc_in_the_schema_and_keep_caller_options() -> None:
    merged = conninfo_to_dict(session_conninfo("postgresql://u@h/db?options=-c%20statement_timeout%3D4321", "s1"))

    assert merged["options"] == "-c statement_timeout=4321 -c TimeZone=UTC -c search_path=s1"
    assert merged["application_name"] == "gradebot"
    assert conninfo_to_dict(session_conninfo("host=h dbname=db", None))["options"] == "-c TimeZone=UTC"


async def test_unreachable_postgres_is_a_store_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(StoreError, match="PostgreSQL"):
        await open_store(f"postgresql://postgres@127.0.0.1:{closed_port}/test", wait_timeout=timedelta(seconds=0.3))


def test_package_exports_only_public_names_that_exist() -> None:
    assert sorted(storage.__all__) == storage.__all__
    assert all(hasattr(storage, name) for name in storage.__all__)
    assert "open_store" in storage.__all__ and "Store" in storage.__all__


def test_storage_imports_nothing_of_gradebot_and_never_reads_the_environment() -> None:
    for source in sorted(STORAGE_DIR.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & {"bot", "graph", "cards", "sandbox", "app", "os"}, f"{source.name} imports {roots}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"environ", "getenv"}, f"{source.name} reads the environment"


def test_importing_storage_loads_no_postgres_driver_and_no_other_gradebot_package() -> None:
    check = (
        "import sys, storage, storage.sqlite; "
        "loaded = {name.split('.')[0] for name in sys.modules}; "
        "print(sorted(loaded & {'psycopg', 'psycopg_pool', 'bot', 'graph', 'cards', 'sandbox', 'app'}))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
