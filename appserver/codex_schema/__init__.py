"""The Codex 0.169 app-server protocol bundles, as `codex app-server generate-json-schema` and
`generate-ts` write them (with and without `--experimental`), shipped as one xz tarball.

`write_bundle("json", experimental=False, out=DIR)` writes the same files, byte for byte, as
`codex app-server generate-json-schema --out DIR` (329 files; 479 with `--experimental`);
`"ts"` those of `generate-ts` (784 / 951). The server itself never reads them.
"""

from __future__ import annotations

import importlib.resources
import lzma
import shutil
import tarfile
from pathlib import Path
from typing import Final, Literal

CODEX_PROTOCOL_VERSION: Final = "0.169.0"
BUNDLE_NAME: Final = f"app-server-protocol-{CODEX_PROTOCOL_VERSION}.tar.xz"

Kind = Literal["json", "ts"]


def bundle_prefix(kind: Kind, experimental: bool) -> str:
    return f"{kind}-{'experimental' if experimental else 'stable'}/"


def write_bundle(kind: Kind, *, experimental: bool, out: Path) -> int:
    """Write one bundle's files under `out` (created if needed); returns how many."""
    prefix = bundle_prefix(kind, experimental)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    source = importlib.resources.files(__package__).joinpath(BUNDLE_NAME)
    with (
        source.open("rb") as raw,
        lzma.open(raw) as stream,
        tarfile.open(fileobj=stream, mode="r|") as archive,
    ):
        for member in archive:
            name = member.name.removeprefix("./")
            if not member.isfile() or not name.startswith(prefix):
                continue
            relative = Path(name.removeprefix(prefix))
            if relative.is_absolute() or ".." in relative.parts:
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = archive.extractfile(member)
            assert extracted is not None
            with extracted, open(target, "wb") as handle:
                shutil.copyfileobj(extracted, handle)
            written += 1
    return written
