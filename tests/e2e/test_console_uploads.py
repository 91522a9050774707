"""Console mode: a chart the bot uploads (files.upload_v2) is saved and its path printed."""

from __future__ import annotations

import io
import re
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.console import CHANNEL_ID, LOCAL_TOKEN, ConsoleSlack, Screen


async def test_an_uploaded_chart_is_saved_and_its_path_printed() -> None:
    out = io.StringIO()
    console = ConsoleSlack(Screen(out))
    await console.start()
    try:
        client = AsyncWebClient(token=LOCAL_TOKEN, base_url=console.api_url)
        await client.files_upload_v2(
            channel=CHANNEL_ID, content=b"\x89PNG fake", filename="../run.png", title="Equity"
        )
    finally:
        await console.stop()

    found = re.search(r"📈 Equity: (\S+)", out.getvalue())
    assert found is not None, out.getvalue()
    saved = Path(found[1])
    assert saved.read_bytes() == b"\x89PNG fake"
    assert saved.name.endswith("-run.png")  # Slack's file name never becomes a path
