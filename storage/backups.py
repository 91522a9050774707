"""Configuration backups as JSON files: BACKUP_DIR/<scope>/<UTC timestamp>_v<version>.json.

Each file is complete on its own (scope, version, parameters, who and why), so a
restore needs nothing but the file, even after the database was lost. Files are
written atomically: a temporary file of its own, fsync, then linked to its final name
only if that name is still free (a rename that never replaces another writer's backup),
fsync of the directory. A backup is never seen half-written under its final name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from core.errors import NotFoundError, ValidationError
from core.models import BackupRecord, Snapshot
from core.params import Scope

FORMAT = "paramadapt-backup/1"
_ID = re.compile(r"^(global|HIGH|MEDIUM|LOW)-(\d{8}T\d{12}Z(?:-\d+)?_v\d+)$")
_FILE = re.compile(r"^(\d{8}T\d{12}Z)(?:-(\d+))?_v\d+\.json$")

log = logging.getLogger(__name__)
Field = TypeVar("Field")


class FileBackups:
    """Implements core.ports.BackupFiles."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def write(
        self, snapshot: Snapshot, at: datetime, actor: str, reason: str
    ) -> BackupRecord:
        return await asyncio.to_thread(self._write, snapshot, at, actor, reason)

    async def read(self, backup_id: str) -> BackupRecord:
        return await asyncio.to_thread(self._read, backup_id)

    async def discard(self, backup_id: str) -> None:
        await asyncio.to_thread(self._discard, backup_id)

    async def newest(self, scope: Scope | None, limit: int) -> list[BackupRecord]:
        return await asyncio.to_thread(self._newest, scope, limit)

    def _write(self, snapshot: Snapshot, at: datetime, actor: str, reason: str) -> BackupRecord:
        folder = self.directory / snapshot.scope.value
        folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{at:%Y%m%dT%H%M%S%f}Z"
        suffix = 1
        while True:  # two backups within one microsecond: keep both, under two names
            name = f"{stamp}{f'-{suffix}' if suffix > 1 else ''}_v{snapshot.version}.json"
            path = folder / name
            suffix += 1
            if path.exists():
                continue
            record = BackupRecord(
                backup_id=f"{snapshot.scope.value}-{path.stem}",
                scope=snapshot.scope,
                version=snapshot.version,
                path=str(path.relative_to(self.directory)),
                created_at=at,
                actor=actor,
                reason=reason,
                parameters=dict(snapshot.parameters),
            )
            text = json.dumps(_document(record), indent=2, sort_keys=True)
            if _write_atomically(path, text):
                return record

    def _read(self, backup_id: str) -> BackupRecord:
        path = self._path(backup_id)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no backup '{backup_id}' in {self.directory}") from None
        except (OSError, ValueError) as error:
            raise ValidationError(f"backup '{backup_id}' cannot be read: {error}") from None
        return _record(backup_id, path.relative_to(self.directory), document)

    def _discard(self, backup_id: str) -> None:
        path = self._path(backup_id)
        path.unlink(missing_ok=True)
        _fsync_directory(path.parent)

    def _newest(self, scope: Scope | None, limit: int) -> list[BackupRecord]:
        """The newest `limit` readable backup files, newest first; an unreadable one (not a
        backup, or damaged) is skipped with a warning, as it could not be restored."""
        found: list[tuple[tuple[str, int], str]] = []
        for folder_scope in [scope] if scope is not None else list(Scope):
            folder = self.directory / folder_scope.value
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                match = _FILE.match(entry.name)
                if match and entry.is_file():
                    key = (match[1], int(match[2] or 1))
                    found.append((key, f"{folder_scope.value}-{entry.name.removesuffix('.json')}"))
        found.sort(reverse=True)
        records: list[BackupRecord] = []
        for _key, backup_id in found:
            if len(records) == limit:
                break
            try:
                records.append(self._read(backup_id))
            except (NotFoundError, ValidationError) as error:  # removed meanwhile, or damaged
                log.warning("backup file skipped: %s", error)
        return records

    def _path(self, backup_id: str) -> Path:
        match = _ID.match(backup_id)
        if not match:  # a malformed id names no backup: not found, and no path to traverse
            raise NotFoundError(
                f"no backup '{backup_id}': ids look like global-20261123T030000000000Z_v3"
            )
        return self.directory / match[1] / f"{match[2]}.json"


def _write_atomically(path: Path, text: str) -> bool:
    """Write `text` as `path` if no file has that name yet; False, nothing written, if one has.

    The text goes to a temporary file of this writer's own, is fsynced, then hard-linked to
    `path` (atomic, and unlike a rename it fails rather than replace a file of the same name
    that a concurrent writer published first), the temporary name removed, the directory
    fsynced. On any failure the temporary file is removed and `path` is not created.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(temporary)
    _fsync_directory(path.parent)
    return True


def _fsync_directory(folder: Path) -> None:
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _document(record: BackupRecord) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "backup_id": record.backup_id,
        "scope": record.scope.value,
        "version": record.version,
        "parameters": record.parameters,
        "created_at": record.created_at.isoformat(),
        "actor": record.actor,
        "reason": record.reason,
    }


def _record(backup_id: str, path: Path, document: object) -> BackupRecord:
    """The backup a file holds; a file that is not a whole one (made by hand, damaged) is
    refused naming the field at fault, as it could not be restored."""
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or not isinstance(document.get("parameters"), dict)
    ):
        raise ValidationError(f"backup '{backup_id}' is not a {FORMAT} file")
    fields: dict[str, Any] = document

    def field(name: str, convert: Callable[[Any], Field]) -> Field:
        if name not in fields:
            raise _incomplete(backup_id, f"missing {name}")
        try:
            return convert(fields[name])
        except (KeyError, TypeError, ValueError):
            raise _incomplete(backup_id, f"{name} is not valid: {fields[name]!r:.60}") from None

    return BackupRecord(
        backup_id=backup_id,
        scope=field("scope", Scope),
        version=field("version", int),
        path=str(path),
        created_at=field("created_at", _moment),
        actor=field("actor", str),
        reason=field("reason", str),
        parameters=dict(fields["parameters"]),
    )


def _moment(text: str) -> datetime:
    """A time as backups write it; one without a time zone (made by hand) is taken as UTC,
    so that it compares with the others."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _incomplete(backup_id: str, problem: str) -> ValidationError:
    return ValidationError(f"backup '{backup_id}' is not a complete paramadapt backup: {problem}")
