"""Writes to an S3-compatible object store: whole-object publishes and conditional PUTs.

Reads go through pyarrow's S3 filesystem (parquet_lake.py). Writes go through boto3
because they need two things pyarrow's output streams cannot give without reaching into
its internals: an upload that is either complete or never published (one PutObject of
the finished file: S3 makes an object visible only once its PUT succeeded, and a failed
PUT leaves the previous version untouched), and the conditional writes (`If-None-Match`,
`If-Match`) behind the writer lease and the fenced publish of a day (locks.py).

The endpoint and credentials are the usual AWS settings (AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL, AWS_REGION, keys, a profile or a role), which boto3 reads itself; the
URI's query options endpoint_override=host:port, scheme=http|https and region=... win
over them, as they do for the pyarrow reader.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cg_assets.settings import SettingsError

# A PutObject takes at most 5 GiB; a day file is a few MB per 10k records.
MAX_SINGLE_PUT_BYTES = 5 * 1024**3


class S3Store:
    def __init__(self, root: str) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise SettingsError(
                f"CG_LAKE_ROOT={root!r} is an S3 URI, which needs boto3: "
                "pip install 'cg_assets[s3]' (or pip install boto3)."
            ) from None
        parts = urlsplit(root)
        query = dict(parse_qsl(parts.query))
        kwargs: dict[str, Any] = {}
        if "endpoint_override" in query:
            scheme = query.get("scheme", "https")
            kwargs["endpoint_url"] = f"{scheme}://{query['endpoint_override']}"
        if "region" in query:
            kwargs["region_name"] = query["region"]
        self.bucket = parts.netloc
        # Retries of a PUT are safe: it publishes the same whole object or nothing.
        self._client = boto3.client(
            "s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}), **kwargs
        )
        self._errors = _client_errors()

    def key_of(self, path: str) -> str:
        """A pyarrow path ("bucket/prefix/...") as this bucket's object key."""
        return path.split("/", 1)[1]

    def put_file(self, key: str, local_path: str) -> None:
        size = os.path.getsize(local_path)
        if size > MAX_SINGLE_PUT_BYTES:
            raise OSError(f"{key}: {size} bytes is over the 5 GiB a single PutObject takes")
        try:
            with open(local_path, "rb") as body:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size)
        except self._errors as exc:
            raise OSError(f"s3://{self.bucket}/{key}: the upload failed ({exc})") from None

    def put_file_fenced(self, key: str, local_path: str, version: str | None) -> str | None:
        """Publish the file only over `version` (an ETag; None: only if there is no object
        yet). The new ETag, or None when the object is no longer that version.

        A refusal after a retried PUT may be this very upload having landed (the first
        answer lost): an object whose ETag is the file's MD5 (what S3 gives a single PUT) is
        taken as published."""
        size = os.path.getsize(local_path)
        if size > MAX_SINGLE_PUT_BYTES:
            raise OSError(f"{key}: {size} bytes is over the 5 GiB a single PutObject takes")
        condition = {"IfMatch": version} if version is not None else {"IfNoneMatch": "*"}
        try:
            with open(local_path, "rb") as body:
                answer = self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentLength=size, **condition
                )
        except self._errors as exc:
            if _error_code(exc) not in _REFUSED:
                raise OSError(f"s3://{self.bucket}/{key}: the upload failed ({exc})") from None
            now = self.head_etag(key)
            if now is not None and now.strip('"') == _md5_of(local_path):
                return now
            return None
        return str(answer["ETag"])

    def head_etag(self, key: str) -> str | None:
        """The object's ETag, or None if there is no such object."""
        try:
            return str(self._client.head_object(Bucket=self.bucket, Key=key)["ETag"])
        except self._errors as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise OSError(f"s3://{self.bucket}/{key}: HEAD failed ({exc})") from None

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        """Create the object unless it exists; its ETag, or None if it existed."""
        return self._conditional_put(key, body, IfNoneMatch="*")

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        """Replace the object if its ETag is still `etag`; the new ETag, or None if not."""
        return self._conditional_put(key, body, IfMatch=etag)

    def _conditional_put(self, key: str, body: bytes, **condition: str) -> str | None:
        try:
            answer = self._client.put_object(Bucket=self.bucket, Key=key, Body=body, **condition)
        except self._errors as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412"):
                return None
            raise OSError(f"s3://{self.bucket}/{key}: conditional write failed ({exc})") from None
        return str(answer["ETag"])

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            raise OSError(f"s3://{self.bucket}/{key}: read failed ({exc})") from None
        return answer["Body"].read(), str(answer["ETag"])

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except self._errors as exc:
            raise OSError(f"s3://{self.bucket}/{key}: delete failed ({exc})") from None


# What a store answers when a condition does not hold (412, or 409 while another conditional
# write of the key is in flight; NoSuchKey for If-Match on a deleted object).
_REFUSED = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409")


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _md5_of(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)
