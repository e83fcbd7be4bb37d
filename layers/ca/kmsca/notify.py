"""Notifications to the CA's SNS topic (rotation failures, KeyValueStore capacity, expiry)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .aws_errors import translated

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


@translated("sns")
class Notifier:
    """Publishes one JSON message per event to an SNS topic; an SNS failure raises
    :class:`~kmsca.errors.AwsCallFailed`.

    Args:
        sns: boto3 SNS client.
        topic_arn: the notification topic (template ``NotificationTopic``).
    """

    def __init__(self, sns: SNSClient, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def notify(self, event: str, subject: str, details: Mapping[str, object]) -> None:
        """Publish ``{"event": ..., **details}`` with ``subject`` (cut to SNS's 100 characters).

        ``details`` must hold no secrets: serial numbers, ARNs, error codes and messages only.
        """
        self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=subject[:100],
            Message=json.dumps({"event": event, **details}, default=str, indent=2),
            MessageAttributes={"event": {"DataType": "String", "StringValue": event}},
        )
