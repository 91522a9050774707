"""The Procfile's web process, as a platform (Heroku, Dokku, …) runs it: it listens on the
PORT the platform sets, on every interface."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import aiohttp

from tests.process import BotProcess, free_port

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def web_process() -> tuple[dict[str, str], list[str]]:
    """The `web:` line split into its variable assignments and the paramadapt arguments."""
    (line,) = [line for line in PROCFILE.read_text().splitlines() if line.startswith("web:")]
    words = shlex.split(line.removeprefix("web:"))
    assignments = [word for word in words if "=" in word and not word.startswith("-")]
    command = words[len(assignments) :]
    assert command[0] == "paramadapt", line
    return dict(word.split("=", 1) for word in assignments), command[1:]


async def test_the_web_process_serves_on_the_platforms_port_on_every_interface(
    tmp_path: Path,
) -> None:
    assignments, arguments = web_process()
    port = free_port()
    env = {
        **assignments,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'web.db'}",
        "BACKUP_DIR": str(tmp_path / "backups"),
    }
    bot = BotProcess(*arguments, env=env)
    try:
        await asyncio.to_thread(bot.wait_for, rf"listening on http://0\.0\.0\.0:{port}\b")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 200
        assert await asyncio.to_thread(bot.stop) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
