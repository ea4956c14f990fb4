"""A local S3-compatible endpoint for tests (moto's server mode on 127.0.0.1) — a test double only.

``with local_s3(buckets=("bucket",)) as env:`` starts the server, creates the buckets and yields
the environment variables tensorflow-io's S3 filesystem needs (scheme included in S3_ENDPOINT:
tensorflow-io 0.37.1 ignores S3_USE_HTTPS, and a bare host:port makes reads hang).
"""
from __future__ import annotations

import contextlib
import os
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_s3(buckets=("bucket",)):
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "S3_VERIFY_SSL": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield env
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
