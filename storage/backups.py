"""Configuration backups as JSON files: BACKUP_DIR/<scope>/<UTC timestamp>_v<version>.json.

Each file is complete on its own (scope, version, parameters, who and why), so a
restore needs nothing but the file, even after the database was lost. Files are
written atomically: a temporary file, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import NotFoundError, ValidationError
from core.models import BackupRecord, Snapshot
from core.params import Scope

FORMAT = "paramadapt-backup/1"
_ID = re.compile(r"^(global|HIGH|MEDIUM|LOW)-(\d{8}T\d{12}Z(?:-\d+)?_v\d+)$")


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

    def _write(self, snapshot: Snapshot, at: datetime, actor: str, reason: str) -> BackupRecord:
        folder = self.directory / snapshot.scope.value
        folder.mkdir(parents=True, exist_ok=True)
        path = _free_path(folder, f"{at:%Y%m%dT%H%M%S%f}Z", snapshot.version)
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
        _write_atomically(path, json.dumps(_document(record), indent=2, sort_keys=True))
        return record

    def _read(self, backup_id: str) -> BackupRecord:
        match = _ID.match(backup_id)
        if not match:  # a malformed id names no backup: not found, and no path to traverse
            raise NotFoundError(
                f"no backup '{backup_id}': ids look like global-20261123T030000000000Z_v3"
            )
        path = self.directory / match[1] / f"{match[2]}.json"
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotFoundError(f"no backup '{backup_id}' in {self.directory}") from None
        except (OSError, ValueError) as error:
            raise ValidationError(f"backup '{backup_id}' cannot be read: {error}") from None
        return _record(backup_id, path.relative_to(self.directory), document)


def _free_path(folder: Path, stamp: str, version: int) -> Path:
    path = folder / f"{stamp}_v{version}.json"
    suffix = 1
    while path.exists():  # two backups within one microsecond: keep both
        suffix += 1
        path = folder / f"{stamp}-{suffix}_v{version}.json"
    return path


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
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


def _record(backup_id: str, path: Path, document: dict[str, Any]) -> BackupRecord:
    if document.get("format") != FORMAT or not isinstance(document.get("parameters"), dict):
        raise ValidationError(f"backup '{backup_id}' is not a {FORMAT} file")
    return BackupRecord(
        backup_id=backup_id,
        scope=Scope(document["scope"]),
        version=int(document["version"]),
        path=str(path),
        created_at=datetime.fromisoformat(document["created_at"]),
        actor=str(document["actor"]),
        reason=str(document["reason"]),
        parameters=dict(document["parameters"]),
    )
