"""Drives the sandbox's Customer Profiles routes with AWS's own client (boto3 `customer-profiles`,
botocore's rest-json serialisation, SigV4 signing and error parsing): create a profile, search it
by `_account`, update it, search again; an unknown domain and an unknown search key must surface as
botocore's modeled exceptions. Prints one JSON object.

Usage: customer_profiles_client.py BASE_URL DOMAIN
"""

import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def error_of(call, modeled):
    """The ClientError `call` raises, as botocore parsed it (`modeled`: it is that modeled
    exception class); None if the call succeeds."""
    try:
        call()
    except ClientError as e:
        response = e.response
        return {
            "class": type(e).__name__,
            "modeled": isinstance(e, modeled),
            "code": response["Error"]["Code"],
            "message": response["Error"].get("Message"),
            "status": response["ResponseMetadata"]["HTTPStatusCode"],
        }
    return None


def main():
    base, domain = sys.argv[1:3]
    client = boto3.client(
        "customer-profiles",
        endpoint_url=base,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="sandbox-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    created = client.create_profile(
        DomainName=domain,
        AccountNumber="x:55125386",
        FirstName="Elizabeth",
        LastName="Fuentes",
        PartyType="INDIVIDUAL",
        Address={"City": "Madrid", "Country": "ES"},
        Attributes={"x_user_id": "55125386", "x_handle": "ElizabethFue12"},
    )
    profile_id = created["ProfileId"]
    found = client.search_profiles(
        DomainName=domain, KeyName="_account", Values=["x:55125386"], MaxResults=5
    )
    updated = client.update_profile(
        DomainName=domain,
        ProfileId=profile_id,
        FirstName="Eli",
        LastName="",
        Attributes={"x_handle": "EliFue"},
    )
    found_again = client.search_profiles(
        DomainName=domain, KeyName="_account", Values=["x:55125386"]
    )
    unknown_domain = error_of(
        lambda: client.search_profiles(
            DomainName="no-such-domain", KeyName="_account", Values=["x:55125386"]
        ),
        client.exceptions.ResourceNotFoundException,
    )
    unknown_key = error_of(
        lambda: client.search_profiles(
            DomainName=domain, KeyName="x_user_id", Values=["55125386"]
        ),
        client.exceptions.BadRequestException,
    )
    for answer in (created, found, updated, found_again):
        answer.pop("ResponseMetadata", None)
    print(json.dumps({
        "created": created,
        "found": found,
        "updated": updated,
        "found_again": found_again,
        "unknown_domain": unknown_domain,
        "unknown_key": unknown_key,
    }))


if __name__ == "__main__":
    main()
