"""Where delivered videos live. Stages pass storage keys, never local paths.

``file:///path`` is the embedded default; S3 arrives with the delivery issue and plugs in as
another ``Storage`` subclass chosen by the URL scheme.
"""

from __future__ import annotations

import abc
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size_bytes: int


class Storage(abc.ABC):
    @abc.abstractmethod
    def put_stream(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        """Write ``chunks`` under ``key`` all-or-nothing: a failed upload leaves no object."""

    @abc.abstractmethod
    def stat(self, key: str) -> StoredObject | None:
        """The stored object, if ``key`` exists."""


class FileStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            os.replace(tmp, path)  # atomic: readers never see half a video
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key=key, url=path.as_uri(), size_bytes=size)

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return StoredObject(key=key, url=path.as_uri(), size_bytes=path.stat().st_size)


def build_storage(storage_url: str) -> Storage:
    parsed = urlparse(storage_url)
    if parsed.scheme == "file":
        raw = f"{parsed.netloc}{parsed.path}"  # file://./var keeps a relative path
        return FileStorage(Path(raw or "."))
    raise ValueError(f"STORAGE_URL scheme {parsed.scheme!r} is not supported (use file://)")
