"""Where delivered videos live. Stages pass storage keys, never local paths.

``file:///path`` is the embedded default; ``s3://bucket/prefix`` streams into S3 (or any S3
API, with ``S3_ENDPOINT_URL``) as a multipart upload, one part in memory at a time, so a
300 MB video needs one part's worth of RAM. The job keeps the permanent location; links for
people (``link_for``) are made when needed, since presigned links expire.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import os
import tempfile
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlparse

from videopoll.errors import DeliveryError

PART_BYTES = 8 * 1024 * 1024  # S3's minimum part is 5 MiB; 8 keeps memory flat and calls few
PARTS_IN_FLIGHT = 2  # uploads overlapping the download: ~3 parts of memory at most
CONTENT_TYPE = "video/mp4"
CHECKSUM = "CRC32"  # botocore's default algorithm, and the transfer manager's
CHECKSUM_FIELD = f"Checksum{CHECKSUM}"  # where a part's answer (and its completion) carry it
_ASCII_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str  # the permanent location (file:// or s3://), for operators, never for users
    size_bytes: int


def video_key(model: str, job_id: str, created_at: float) -> str:
    """``videos/{model}/{yyyy}/{mm}/{jobId}.mp4``: browsable by model and month."""
    when = dt.datetime.fromtimestamp(created_at, tz=dt.UTC)
    return f"videos/{model}/{when:%Y}/{when:%m}/{job_id}.mp4"


class Storage(abc.ABC):
    def __init__(self, public_base_url: str | None = None) -> None:
        self.public_base_url = public_base_url.rstrip("/") + "/" if public_base_url else None

    @abc.abstractmethod
    def put_stream(
        self, key: str, chunks: Iterable[bytes], metadata: dict[str, str] | None = None
    ) -> StoredObject:
        """Write ``chunks`` under ``key`` all-or-nothing: a failed upload leaves no object."""

    @abc.abstractmethod
    def stat(self, key: str) -> StoredObject | None:
        """The stored object, if ``key`` exists."""

    @abc.abstractmethod
    def open(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """Read a stored object as a stream (a notifier uploading the video reads from here)."""

    def link_for(self, key: str, api_base_url: str | None = None) -> str | None:
        """A link a person can open, made now: the public URL when one is configured."""
        if self.public_base_url:
            return self.public_base_url + quote(key)
        return None


class FileStorage(Storage):
    def __init__(self, root: Path, public_base_url: str | None = None) -> None:
        super().__init__(public_base_url)
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    def put_stream(
        self, key: str, chunks: Iterable[bytes], metadata: dict[str, str] | None = None
    ) -> StoredObject:
        path = self.path(key)
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
        path = self.path(key)
        if not path.is_file():
            return None
        return StoredObject(key=key, url=path.as_uri(), size_bytes=path.stat().st_size)

    def open(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self.path(key).open("rb")

    def link_for(self, key: str, api_base_url: str | None = None) -> str | None:
        """The public URL, or the API's ``/videos/<key>``: never a path on this server."""
        public = super().link_for(key)
        if public or not api_base_url:
            return public
        return f"{api_base_url.rstrip('/')}/videos/{quote(key)}"


class S3Storage(Storage):
    """Multipart uploads into S3; a failure aborts the upload, so no partial object remains."""

    def __init__(self, bucket: str, prefix: str, client: Any, public_base_url: str | None = None,
                 presign_seconds: int = 3600, part_bytes: int = PART_BYTES) -> None:
        super().__init__(public_base_url)
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client
        self.presign_seconds = presign_seconds
        self.part_bytes = part_bytes
        # As AWS's own transfer manager does: each part carries its CRC32, which S3 checks,
        # and the object keeps their composite. Without a declared algorithm an S3 API may
        # checksum the whole object again at completion (moto does, a CRC64 of all of it).
        # ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required`` turns it off for stores that
        # refuse checksums.
        config = getattr(getattr(client, "meta", None), "config", None)
        wanted = getattr(config, "request_checksum_calculation", None) == "when_supported"
        self._checksum: dict[str, str] = {"ChecksumAlgorithm": CHECKSUM} if wanted else {}

    def put_stream(
        self, key: str, chunks: Iterable[bytes], metadata: dict[str, str] | None = None
    ) -> StoredObject:
        full = self.prefix + key
        upload = self._call("create_multipart_upload", Bucket=self.bucket, Key=full,
                            ContentType=CONTENT_TYPE, Metadata=s3_metadata(metadata or {}),
                            **self._checksum)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        in_flight: deque[Future[dict[str, Any]]] = deque()
        size = 0
        buffer = bytearray()
        # Parts upload in the background while the next one downloads, at most
        # ``PARTS_IN_FLIGHT`` at a time: memory stays a few parts, not the video.
        pool = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="s3-part")
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_bytes:
                    with memoryview(buffer) as view:  # one copy of the part, not two
                        part = bytes(view[:self.part_bytes])
                    del buffer[:self.part_bytes]
                    if len(in_flight) >= PARTS_IN_FLIGHT:
                        parts.append(in_flight.popleft().result())
                    number = len(parts) + len(in_flight) + 1
                    in_flight.append(pool.submit(self._part, full, upload_id, number, part))
                    del part
            if buffer or not (parts or in_flight):
                number = len(parts) + len(in_flight) + 1
                in_flight.append(pool.submit(self._part, full, upload_id, number,
                                             bytes(buffer)))
            while in_flight:
                parts.append(in_flight.popleft().result())
            self._call("complete_multipart_upload", Bucket=self.bucket, Key=full,
                       UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=True)  # no part lands after the abort
            self._abort(full, upload_id)
            raise
        finally:
            pool.shutdown(wait=False)
        return StoredObject(key=key, url=f"s3://{self.bucket}/{full}", size_bytes=size)

    def stat(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        full = self.prefix + key
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _delivery_error("head_object", exc) from exc
        except Exception as exc:
            raise _delivery_error("head_object", exc) from exc
        return StoredObject(key=key, url=f"s3://{self.bucket}/{full}",
                            size_bytes=int(head["ContentLength"]))

    def open(self, key: str) -> AbstractContextManager[IO[bytes]]:
        body = self._call("get_object", Bucket=self.bucket, Key=self.prefix + key)["Body"]
        return contextlib.closing(body)

    def link_for(self, key: str, api_base_url: str | None = None) -> str | None:
        """The public URL of the object (the base is the bucket's address, so the prefix is
        part of the path), else a presigned GET valid for ``presign_seconds`` from now."""
        public = super().link_for(self.prefix + key)
        if public:
            return public
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + key},
            ExpiresIn=self.presign_seconds)
        return url

    def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        answer = self._call("upload_part", Bucket=self.bucket, Key=key, UploadId=upload_id,
                            PartNumber=number, Body=body, **self._checksum)
        part = {"ETag": answer["ETag"], "PartNumber": number}
        if self._checksum and CHECKSUM_FIELD in answer:  # completion names each part's
            part[CHECKSUM_FIELD] = answer[CHECKSUM_FIELD]
        return part

    def _abort(self, key: str, upload_id: str) -> None:
        # S3 itself may be what failed; a bucket lifecycle rule cleans stale uploads up later
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _call(self, name: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, name)(**kwargs)
        except Exception as exc:
            raise _delivery_error(name, exc) from exc


def s3_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """S3 user metadata travels as ASCII headers: anything else is percent-escaped, since
    botocore refuses it outright and the upload would fail on every retry."""
    return {key: value if value.isascii() else quote(value, safe=_ASCII_SAFE)
            for key, value in metadata.items()}


def _delivery_error(operation: str, exc: Exception) -> DeliveryError:
    """Storage faults are ours, and worth retrying: the video is still at the provider."""
    return DeliveryError(f"storage {operation} failed: {type(exc).__name__}")


def build_storage(storage_url: str, *, endpoint_url: str | None = None,
                  public_base_url: str | None = None, presign_seconds: int = 3600) -> Storage:
    parsed = urlparse(storage_url)
    if parsed.scheme == "file":
        raw = f"{parsed.netloc}{parsed.path}"  # file://./var keeps a relative path
        return FileStorage(Path(raw or "."), public_base_url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError("STORAGE_URL s3://bucket/prefix needs a bucket")
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=5, read_timeout=60, signature_version="s3v4"))
        return S3Storage(parsed.netloc, parsed.path, client, public_base_url, presign_seconds)
    raise ValueError(f"STORAGE_URL scheme {parsed.scheme!r} is not supported (use file:// or s3://)")
