"""A fake Slack (Web API, response_url, Socket Mode) for end-to-end tests of the real clients."""

from .payloads import Workspace, channel_id_for_name, dm_channel_id_for_user
from .server import (
    Ack,
    ApiCall,
    FakeSlack,
    ResponseUrlPost,
    SocketConnection,
    UploadedFile,
)

__all__ = [
    "Ack",
    "ApiCall",
    "FakeSlack",
    "ResponseUrlPost",
    "SocketConnection",
    "UploadedFile",
    "Workspace",
    "channel_id_for_name",
    "dm_channel_id_for_user",
]
