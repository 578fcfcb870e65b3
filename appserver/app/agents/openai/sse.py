"""Server-sent events: bytes in, the `data` payload of each event out.

Cheap on purpose: this runs once per streamed token. Events end at a blank line (`\\n\\n`;
`\\r\\n` is normalised); `data:` lines of one event are joined with `\\n`; comments
(`: keep-alive`) and other fields (`event:`, `id:`, `retry:`) are skipped; `[DONE]` ends the
stream for Chat Completions and is returned like any payload.
"""

from __future__ import annotations


class SseDecoder:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads of the events `data` completes, in order."""
        buffer = self._buffer + data
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                # A `\r\n` may be split across reads: wait for the next byte.
                self._buffer = buffer
                return []
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        payloads = []
        for event in events:
            if event.startswith(b"data: ") and b"\n" not in event:
                payloads.append(event[6:])
                continue
            data_lines = [
                line[5:].removeprefix(b" ")
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            ]
            if data_lines:
                payloads.append(b"\n".join(data_lines))
        return payloads
