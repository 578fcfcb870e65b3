"""Size limits shared by every transport."""

from typing import Final

#: The largest message accepted on any transport (tungstenite's default max message size);
#: a bigger stdio line or WebSocket message closes the connection.
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
#: The largest single WebSocket frame (tungstenite's default max frame size).
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
