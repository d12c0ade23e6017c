"""A boto3 client as the AWS providers (SES email, SNS SMS) use it: one attempt per call
(our retry schedule and breakers decide about retrying, not botocore's), bounded
timeouts and pool, credentials given or from boto3's usual chain (environment, profile,
role)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


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
