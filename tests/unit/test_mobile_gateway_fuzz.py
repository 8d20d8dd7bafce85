"""A bounded schema-driven fuzz run (schemathesis, from the gateway's own OpenAPI document)
against the real gateway, server and terminal link: no request gets a 5xx answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from branchline.server.mobile_gateway.app import Limits
from branchline.server.mobile_gateway.openapi import document
from tests.unit.mobile_support import stack

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
EXAMPLES = 30  # per operation and mode: bounded, so the run stays well under a minute


def fuzz(base: str, ca: str, handle: str, seen: dict[int, int]) -> list[str]:
    """Every operation of the document, valid and invalid inputs, with and without this
    site's Origin, over a phone session paired through the QR's URL; the 5xx answers."""
    http = requests.Session()
    # Environment CA bundles (REQUESTS_CA_BUNDLE) would override the dev CA.
    http.trust_env = False
    http.verify = ca
    paired = http.get(f"{base}/p/{handle}")
    assert paired.status_code == 200
    schema = schemathesis.openapi.from_dict(document())
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here, failing the test
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode), same_origin=st.booleans())
            def probe(case: schemathesis.Case, same_origin: bool) -> None:
                headers = {"Origin": base} if same_origin else {}
                response = case.call(base_url=base, session=http, headers=headers, verify=ca)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}"
                    )

            probe()
    return failures


async def test_fuzzing_the_api_finds_no_server_error(tmp_path: Path) -> None:
    limits = Limits(phone_rate=1000, phone_burst=1000, terminal_rate=1000, terminal_burst=1000)
    async with stack(tmp_path, limits) as running:
        handle = (await running.offer()).handle
        ca = str(tmp_path / "pki" / "ca.pem")
        seen: dict[int, int] = {}
        failures = await asyncio.to_thread(fuzz, running.base, ca, handle, seen)
    assert failures == []
    # The run reached the handlers: answers both good and refused, not one wall of errors.
    assert sum(seen.values()) >= 100
    assert 200 in seen and {400, 403, 404} & set(seen)
