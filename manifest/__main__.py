"""`python -m manifest build …`: the command line of the Teams app package builder (manifest/build.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from manifest.build import (
    DEFAULT_OUT,
    DEFAULT_SCHEMA_ROOT,
    ManifestInputError,
    ManifestInvalidError,
    SchemaNotFoundError,
    build_package,
    render_manifest,
    validate_manifest,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manifest", description="Gradebot's Teams app package.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", description="Build Gradebot's Teams app package (manifest.json + icons, zipped), validated offline."
    )
    build.add_argument("--bot-app-id", required=True, help="the Entra app (client) id of the Azure Bot")
    build.add_argument("--teams-app-id", required=True, help="a GUID of your own for the Teams app; keep it stable")
    build.add_argument("--domain", required=True, help="the bot's public host name, e.g. gradebot.contoso.edu")
    build.add_argument("--version", default="1.0.0", help="app version MAJOR.MINOR.PATCH; raise it on every upload")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"zip to write (default {DEFAULT_OUT})")
    build.add_argument("--schema-root", type=Path, default=DEFAULT_SCHEMA_ROOT, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    try:
        manifest = render_manifest(
            teams_app_id=arguments.teams_app_id,
            bot_app_id=arguments.bot_app_id,
            domain=arguments.domain,
            version=arguments.version,
        )
        problems = validate_manifest(manifest, arguments.schema_root)
        if problems:
            raise ManifestInvalidError(problems)
        out = build_package(manifest, arguments.out)
    except (ManifestInputError, ManifestInvalidError, SchemaNotFoundError) as error:
        print(f"python -m manifest build: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
