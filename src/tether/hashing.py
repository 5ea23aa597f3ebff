"""Content hashes of files and directories, recorded with every artifact."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dir_sha256(path: Path) -> str:
    """Hash of a directory's files: their relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode("utf-8") + b"\0")
        digest.update(file_sha256(file).encode("ascii") + b"\0")
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """file_sha256 for a file, dir_sha256 for a directory."""
    return dir_sha256(path) if path.is_dir() else file_sha256(path)


def sha256_text(text: str) -> str:
    """SHA-256 of a string's UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
