"""Build Gradebot's Teams app package: fill the manifest template, validate it offline, zip it with the icons.

The command line is `python -m manifest build …` (manifest/__main__.py). Validation uses Microsoft's own schema
bundled in devtools/node_modules/@microsoft/app-manifest (run scripts/setup).
"""

from __future__ import annotations

import copy
import json
import re
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import regex  # type: ignore[import-untyped]  # Microsoft's patterns use \p{L}, which `re` cannot compile
from jsonschema import Draft4Validator, ValidationError, validators  # type: ignore[import-untyped]

MANIFEST_DIR = Path(__file__).resolve().parent
REPO_ROOT = MANIFEST_DIR.parent
TEMPLATE_PATH = MANIFEST_DIR / "manifest.template.json"
DEFAULT_OUT = MANIFEST_DIR / "build" / "gradebot.zip"
DEFAULT_SCHEMA_ROOT = REPO_ROOT / "devtools" / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas"
DEFAULT_SCHEMA_ROOT = DEFAULT_SCHEMA_ROOT / "teams"
ICON_SIZES = {"color.png": (192, 192), "outline.png": (32, 32)}

# Stricter than the v1.25 schema (title ≤ 128, ≤ 12 commands): what every Teams client shows in full.
MAX_COMMANDS_PER_LIST = 10
MAX_COMMAND_TITLE = 32
MAX_COMMAND_DESCRIPTION = 128

GUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
DOMAIN_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN_PATTERN = re.compile(rf"{DOMAIN_LABEL}(?:\.{DOMAIN_LABEL})*\.[a-z][a-z0-9-]*[a-z0-9]")
VERSION_PATTERN = re.compile(r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)")
PLACEHOLDER_PATTERN = re.compile(r"\{\{[A-Z_]+\}\}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ManifestInputError(ValueError):
    """An app id, domain or version given to the builder is not usable."""


class ManifestInvalidError(ValueError):
    """The rendered manifest breaks the Teams schema or Gradebot's own limits."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("the manifest is not valid:\n  " + "\n  ".join(errors))
        self.errors = list(errors)


class SchemaNotFoundError(FileNotFoundError):
    """Microsoft's manifest schema is not installed where the builder looks for it."""


def check_guid(value: str, what: str) -> str:
    """The GUID in lower case, or ManifestInputError naming what was wrong."""
    candidate = value.strip()
    if not GUID_PATTERN.fullmatch(candidate):
        raise ManifestInputError(
            f"{what} must be a GUID like 00000000-0000-0000-0000-000000000000 (got {value!r}); copy it from "
            "the Entra app registration or make one with `python -c 'import uuid; print(uuid.uuid4())'`"
        )
    return candidate.lower()


def check_domain(value: str) -> str:
    """The bot's public host name in lower case, or ManifestInputError explaining the expected form."""
    candidate = value.strip().lower()
    if "://" in candidate or "/" in candidate or ":" in candidate:
        raise ManifestInputError(
            f"--domain must be a bare host name such as gradebot.contoso.edu, without https://, port or path "
            f"(got {value!r})"
        )
    if len(candidate) > 253 or not DOMAIN_PATTERN.fullmatch(candidate):
        raise ManifestInputError(
            f"--domain must be a public DNS host name such as gradebot-abc123.azurewebsites.net (got {value!r})"
        )
    return candidate


def check_version(value: str) -> str:
    """The app version if it is MAJOR.MINOR.PATCH, else ManifestInputError."""
    candidate = value.strip()
    if not VERSION_PATTERN.fullmatch(candidate):
        raise ManifestInputError(f"--version must look like 1.0.0 (MAJOR.MINOR.PATCH), got {value!r}")
    return candidate


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return template


def _substitute(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        for placeholder, value in values.items():
            node = node.replace(placeholder, value)
        return node
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(item, values) for key, item in node.items()}
    return node


def _leftover_placeholders(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield from PLACEHOLDER_PATTERN.findall(node)
    elif isinstance(node, list):
        for item in node:
            yield from _leftover_placeholders(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _leftover_placeholders(item)


def render_manifest(
    *,
    teams_app_id: str,
    bot_app_id: str,
    domain: str,
    version: str = "1.0.0",
    template: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest with every placeholder filled; inputs are checked first (ManifestInputError)."""
    values = {
        "{{TEAMS_APP_ID}}": check_guid(teams_app_id, "--teams-app-id"),
        "{{BOT_APP_ID}}": check_guid(bot_app_id, "--bot-app-id"),
        "{{BOT_DOMAIN}}": check_domain(domain),
        "{{VERSION}}": check_version(version),
    }
    source = copy.deepcopy(dict(template)) if template is not None else load_template()
    manifest: dict[str, Any] = _substitute(source, values)
    leftovers = sorted(set(_leftover_placeholders(manifest)))
    if leftovers:
        raise ManifestInputError(f"the template has placeholders the builder does not fill: {', '.join(leftovers)}")
    return manifest


def _pattern_with_unicode_classes(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _const(validator: Any, expected: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    # Draft 4 has no `const`, but Microsoft's schemas use it (manifestVersion) and their validator (ajv) enforces it.
    if instance != expected:
        yield ValidationError(f"{instance!r} should be {expected!r}")


TeamsManifestValidator = validators.extend(Draft4Validator, {"pattern": _pattern_with_unicode_classes, "const": _const})


def schema_path(schema_root: Path, manifest_version: str) -> Path:
    folder = "vDevPreview" if manifest_version == "devPreview" else f"v{manifest_version}"
    return schema_root / folder / "MicrosoftTeams.schema.json"


def load_schema(schema_root: Path, manifest_version: str) -> dict[str, Any]:
    """Microsoft's bundled schema for that manifest version, or SchemaNotFoundError saying how to install it."""
    path = schema_path(schema_root, manifest_version)
    if not path.is_file():
        raise SchemaNotFoundError(
            f"Microsoft's Teams manifest schema v{manifest_version} is missing at {path}. "
            "Run scripts/setup (it runs `npm ci` in devtools/) to install @microsoft/app-manifest."
        )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return schema


def _location(error: ValidationError) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _command_list_errors(manifest: Mapping[str, Any]) -> Iterator[str]:
    bots = manifest.get("bots")
    if not isinstance(bots, list):
        return
    for bot_index, bot in enumerate(bots):
        command_lists = bot.get("commandLists", []) if isinstance(bot, dict) else []
        for list_index, command_list in enumerate(command_lists if isinstance(command_lists, list) else []):
            commands = command_list.get("commands", []) if isinstance(command_list, dict) else []
            where = f"/bots/{bot_index}/commandLists/{list_index}/commands"
            if isinstance(commands, list) and len(commands) > MAX_COMMANDS_PER_LIST:
                yield f"{where}: {len(commands)} commands, Gradebot keeps each list to {MAX_COMMANDS_PER_LIST}"
            for index, command in enumerate(commands if isinstance(commands, list) else []):
                if not isinstance(command, dict):
                    continue
                title, description = command.get("title"), command.get("description")
                if isinstance(title, str) and len(title) > MAX_COMMAND_TITLE:
                    yield f"{where}/{index}/title: {title!r} is longer than {MAX_COMMAND_TITLE} characters"
                if isinstance(description, str) and len(description) > MAX_COMMAND_DESCRIPTION:
                    yield f"{where}/{index}/description: longer than {MAX_COMMAND_DESCRIPTION} characters"


def validate_manifest(manifest: Mapping[str, Any], schema_root: Path = DEFAULT_SCHEMA_ROOT) -> list[str]:
    """Readable problems ("/json/path: message"), empty when the manifest is valid.

    Checks Microsoft's schema for the manifest's own manifestVersion (Draft 4, as Microsoft validates it) and
    Gradebot's stricter command-list limits. Raises SchemaNotFoundError when the schema is not installed.
    """
    version = manifest.get("manifestVersion")
    if not isinstance(version, str):
        return ["/manifestVersion: missing; Gradebot's template uses 1.25"]
    validator = TeamsManifestValidator(load_schema(schema_root, version))
    schema_errors = sorted(validator.iter_errors(dict(manifest)), key=lambda error: [str(p) for p in error.path])
    problems = [f"{_location(error)}: {error.message}" for error in schema_errors]
    problems.extend(_command_list_errors(manifest))
    return problems


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError when the bytes are not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def build_package(manifest: Mapping[str, Any], out: Path = DEFAULT_OUT, *, icons_dir: Path = MANIFEST_DIR) -> Path:
    """Write the app package: a zip with manifest.json, color.png and outline.png at its root; returns out.

    The zip is byte-for-byte reproducible (fixed timestamps and order). It does not validate the manifest:
    call validate_manifest first, as the command line does.
    """
    icons: dict[str, bytes] = {}
    for name, expected in ICON_SIZES.items():
        path = icons_dir / name
        if not path.is_file():
            raise ManifestInputError(f"icon {path} is missing; run `python -m manifest.icons`")
        data = path.read_bytes()
        if png_size(data) != expected:
            raise ManifestInputError(f"icon {path} must be {expected[0]}×{expected[1]} pixels")
        icons[name] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = {"manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(), **icons}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            package.writestr(info, data)
    return out
