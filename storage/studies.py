"""Where Optuna keeps the studies of Bayesian runs.

No synchronous PostgreSQL driver is installed (Optuna's RDBStorage needs one; asyncpg is
async only), so studies go to Optuna's journal file, next to the backups by default: it is
shared safely by every process on the host through file locks, and it is the same whether
the database is SQLite or PostgreSQL. Each run is one study, named by its run id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend


@dataclass(frozen=True)
class JournalStudies:
    """Picklable: the worker process opens the journal itself."""

    path: Path

    def __call__(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(self.path)))
