"""Run the real `paramadapt` console script as a child process and watch its log."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "paramadapt"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(
    tmp_path: Path, database_url: str, config: str, **variables: str
) -> dict[str, str]:
    """What a `paramadapt` process runs with: its own database, backup folder, free port and
    `config` as its paramadapt.toml, plus `variables` (tokens, LOG_LEVEL, ...)."""
    config_file = tmp_path / "paramadapt.toml"
    config_file.write_text(config)
    return {
        "DATABASE_URL": database_url,
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PORT": str(free_port()),
        "PARAMADAPT_CONFIG": str(config_file),
        **variables,
    }


class BotProcess:
    def __init__(
        self, *args: str, env: dict[str, str], stdin: bool = False, cwd: Path | None = None
    ) -> None:
        """`stdin`: a pipe the test types into (`type`); otherwise /dev/null."""
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            [str(BIN), *args],
            env={**os.environ, **env},
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first log line matching `pattern`; the default wait is long because a loaded
        CI machine can take many seconds to import and start the process."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in list(self.lines):
            if match := regex.search(line):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._new.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self._new.empty():
                    break
                continue
            if match := regex.search(line):
                return match
        raise AssertionError(f"no log line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def type(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines))
        self.proc.stdin.flush()

    def end_input(self, timeout: float = 20) -> int:
        """Close stdin (EOF) and wait for the process to exit."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


SOCKET_MODE_CONNECTED = "Slack: connected in Socket Mode"


async def started_in_socket_mode(env: dict[str, str]) -> BotProcess:
    """`paramadapt run`, once it is connected to Slack in Socket Mode."""
    bot = BotProcess("run", env=env)
    await asyncio.to_thread(bot.wait_for, SOCKET_MODE_CONNECTED)
    return bot


async def stopped(bot: BotProcess, timeout: float = 20) -> int:
    """SIGTERM; the exit code (raises if the process is still running after `timeout`)."""
    try:
        return await asyncio.to_thread(bot.stop, timeout=timeout)
    finally:
        if bot.proc.poll() is None:
            bot.kill()
