"""The path rules and the base64 rules of fs/* as Codex 0.169 applies them."""

from __future__ import annotations

import base64
import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.fs.base64_codec import Base64Error, decode_standard
from appserver.protocol.absolute_path import NOT_ABSOLUTE_MESSAGE, absolute_path
from appserver.protocol.fs import FsCopyParams, FsPathParams
from appserver.registry import Method, ParamsError

READ = Method("fs/readFile", lambda ctx, params: None, FsPathParams)

segments = st.lists(
    st.sampled_from(["a", "b", "..", ".", "", "dir name", "é"]), min_size=0, max_size=8
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/tmp/x/../y//z/./f.txt", "/tmp/y/z/f.txt"),
        ("/../tmp/f", "/tmp/f"),
        ("//tmp//f/", "/tmp/f"),
        ("/", "/"),
        ("/a/link/../b", "/a/b"),  # lexical, like Codex: `link` is never looked at
    ],
)
def test_absolute_paths_are_normalized_lexically(raw: str, expected: str) -> None:
    assert absolute_path(raw) == expected


@pytest.mark.parametrize("raw", ["", "t/f.txt", "~/x", "./f", "..", " /tmp"])
def test_relative_paths_are_refused_with_codex_text(raw: str) -> None:
    with pytest.raises(ParamsError, match=f"^{NOT_ABSOLUTE_MESSAGE}$"):
        READ.decode_params({"path": raw})


def test_a_non_string_path_is_a_type_error() -> None:
    with pytest.raises(ParamsError, match=r"^invalid type: integer `5`, expected path string$"):
        READ.decode_params({"path": 5})
    with pytest.raises(ParamsError, match=r"^missing field `path`$"):
        READ.decode_params({})


def test_copy_params_are_both_absolute() -> None:
    method = Method("fs/copy", lambda ctx, params: None, FsCopyParams)
    with pytest.raises(ParamsError, match=NOT_ABSOLUTE_MESSAGE):
        method.decode_params({"sourcePath": "/a", "destinationPath": "b"})


@given(segments)
def test_normalized_paths_are_absolute_fixed_points_without_dot_segments(
    parts: list[str],
) -> None:
    path = absolute_path("/" + "/".join(parts))
    assert path.startswith("/")
    assert not path.startswith("//")
    assert path == "/" or not path.endswith("/")
    assert "." not in path.split("/")
    assert ".." not in path.split("/")
    assert absolute_path(path) == path
    assert posixpath.normpath(path) == path


@given(st.binary(max_size=64))
def test_canonical_base64_round_trips(data: bytes) -> None:
    assert decode_standard(base64.b64encode(data).decode()) == data


@given(st.text(alphabet="ABCabc012+/=é -", max_size=12))
def test_decoding_accepts_exactly_canonical_base64(text: str) -> None:
    try:
        decoded = decode_standard(text)
    except Base64Error:
        canonical = False
        try:
            canonical = base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
        except (ValueError, UnicodeEncodeError):
            pass
        assert not canonical
    else:
        assert base64.b64encode(decoded).decode() == text


@pytest.mark.parametrize(
    ("text", "message"),
    [  # what the Codex 0.169 binary answered for each
        ("!!", "Invalid symbol 33, offset 0."),
        ("aGVsbG8", "Invalid padding"),
        ("aGVsb", "Invalid input length: 5"),
        ("a", "Invalid input length: 1"),
        ("aG=sbG8=", "Invalid symbol 61, offset 2."),
        ("aGVsbG9=", "Invalid last symbol 57, offset 6."),
        ("aGVsbB==", "Invalid last symbol 66, offset 5."),
        ("aGVsbA=", "Invalid padding"),
        ("aGVsbA===", "Invalid symbol 61, offset 6."),
        ("aGVs bA==", "Invalid symbol 32, offset 4."),
        ("==", "Invalid symbol 61, offset 0."),
        ("é", "Invalid symbol 195, offset 0."),
    ],
)
def test_base64_errors_use_the_rust_crate_texts(text: str, message: str) -> None:
    with pytest.raises(Base64Error) as caught:
        decode_standard(text)
    assert str(caught.value) == message
