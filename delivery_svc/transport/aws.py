"""A boto3 client as the AWS providers (SES email, SNS SMS) use it: one attempt per call
(our retry schedule and breakers decide about retrying, not botocore's), bounded
timeouts and pool, credentials given or from boto3's usual chain (environment, profile,
role).

boto3 and botocore are imported when the first client is made, not with this module: the
providers' modules are imported wherever their settings are read (an edge process that
only serves the SES webhook among them), and boto3 alone is tens of MiB."""

from __future__ import annotations

from typing import Any


def aws_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_pool_connections: int,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
) -> Any:
    """The ``service`` client; the caller annotates it with the service's client type."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1},
        max_pool_connections=max_pool_connections,
    )
    session = boto3.session.Session(
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        region_name=region,
    )
    return session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]


def call_errors() -> tuple[type[Exception], ...]:
    """What a client's call raises for the provider to translate (botocore's errors)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)
