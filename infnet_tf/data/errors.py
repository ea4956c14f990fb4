"""Errors about input data; every one names the file or path (CLIs exit 2 on a :class:`DataError`)."""
from __future__ import annotations


class DataError(ValueError):
    """Input data that cannot be used as it is (the message names the file); CLIs exit 2 on it."""


class PartitionError(DataError):
    """A partition does not match its manifest (missing / unexpected file, row count, no data)."""


class DataFileError(DataError):
    """A data file cannot be read (corrupt or truncated GZIP/TFRecord); the message names it."""


class StorageUnreachableError(DataError):
    """An object store (s3://, hdfs://) did not answer; the message names the endpoint."""
