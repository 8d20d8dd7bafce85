"""A phone's job the terminal abandons ends once, with a reason the phone reads (docs/mobile.md,
"Abandoned jobs"). Real server, simulator and agent processes (the kiosk branch of the browser
tests, without a browser: the customer is a script on the kiosk page's WebSocket); the phone
is the Mobile API over mTLS with the gateway's role, as ``branchline-mobile`` calls it.

- the agent killed (SIGKILL) and restarted with a job on its ready screen: ``abandoned``
  (``agent_restarted``), reported by the restarted agent from its journal;
- nobody at the terminal (the page closed, the customer gone): ``abandoned`` (``timeout``);
- a withdrawal killed right after the bank approved it (a failpoint): the engine recovers
  the transaction, the customer cancels it at the terminal, the hold is released, and the
  job ends as its transaction did (``abandoned``, nothing paid out, nothing held);
- the terminal out of service (its PIN pad unplugged): ``abandoned`` (``out_of_service``);
- the phone gone (pairing canceled) with the job waiting on the terminal: the server ends it
  (``pairing_ended``), and the terminal runs nothing when start is pressed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest

from branchline.server import pki
from branchline.server.mobile import bank_auth
from branchline.server.storage.engine import open_database
from branchline.v1 import mobile_pb2 as mpb
from branchline.v1 import mobile_pb2_grpc as mpb_grpc
from branchline.v1 import sim_control_pb2
from branchline.v1 import tube_pb2 as tpb
from tests.browser.kiosk_support import KioskBranch, kiosk_branch
from tests.integration.kiosk_ws import KioskSocket
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import agent_ready, desk, ledger, start_agent

pytestmark = pytest.mark.timeout(600)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery"
GATEWAY = "gw-abandon"


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskBranch]:
    logs = tmp_path_factory.mktemp("phone-abandon-logs")
    with kiosk_branch(
        logs,
        server_extra=("--mobile-url", "https://127.0.0.1:9"),
        # A customer who walks away: warned after 5 s, gone 20 s later (WCAG's least).
        inactivity_timeout=5.0,
        warning_seconds=20.0,
    ) as started:
        engine = open_database(f"sqlite:///{started.stack.root / 'server.db'}")
        bank_auth.enroll(engine, "C-1", PASSWORD, SECRET)
        engine.dispose()
        yield started


class Phone:
    """A phone paired with the branch's terminal, through the Mobile API."""

    def __init__(self, stack: Stack) -> None:
        pki.issue_user_cert(stack.pki, "mobile", GATEWAY)
        layout = pki.PkiLayout(stack.pki)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(stack.pki / "ca.pem").read_bytes(),
            private_key=layout.user_key("mobile", GATEWAY).read_bytes(),
            certificate_chain=layout.user_cert("mobile", GATEWAY).read_bytes(),
        )
        self.stack = stack
        self.api = mpb_grpc.MobileStub(
            grpc.secure_channel(f"127.0.0.1:{stack.server_port}", credentials)
        )
        handle = wait_for(self._offered_handle, 30, "a QR on offer")
        opened = self.api.OpenHandle(mpb.OpenHandleRequest(handle=handle), timeout=10)
        self.session = mpb.SessionRequest(session_token=opened.session_token)
        self._keys = 0

    def _offered_handle(self) -> str:
        """The handle the kiosk's QR encodes now (as a camera would read it)."""
        with sqlite3.connect(self.stack.root / "server.db") as conn:
            row = conn.execute(
                "SELECT handle FROM mobile_pairings WHERE terminal_id = ? AND state = 'offered'"
                " ORDER BY issued_at DESC LIMIT 1",
                (self.stack.terminal_id,),
            ).fetchone()
        return str(row[0]) if row else ""

    def submit(self, service: str, auth: str = "terminal", **fields: object) -> str:
        self._keys += 1
        job = self.api.SubmitJob(
            mpb.SubmitJobRequest(
                session=self.session,
                idempotency_key=f"abandon-{self._keys:04d}",
                service=service,
                auth=auth,
                **fields,  # type: ignore[arg-type]
            ),
            timeout=10,
        )
        return str(job.job_id)

    def job(self, job_id: str) -> mpb.PhoneJob:
        return self.api.GetJob(mpb.JobRequest(session=self.session, job_id=job_id), timeout=10)

    def wait_state(self, job_id: str, state: str, timeout: float = 30) -> mpb.PhoneJob:
        deadline = time.monotonic() + timeout
        while True:
            found = self.job(job_id)
            if found.state == state:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"the job not {state} in {timeout} s: {found}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def phone(branch: KioskBranch) -> Phone:
    return Phone(branch.stack)


def statement(phone: Phone) -> str:
    return phone.submit("statement_view", period_from="2026-01-01", period_to="2026-12-31")


def journaled_jobs(stack: Stack) -> int:
    """Phone jobs the agent's journal still holds (an end not yet acknowledged)."""
    with contextlib.closing(sqlite3.connect(stack.state_dir / "journal.db")) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM phone_job").fetchone()[0])


def restart_agent(branch: KioskBranch, env: dict[str, str] | None = None) -> None:
    """The agent started again on its journal (the kiosk page served again)."""
    branch.stack.agent_socket.unlink(missing_ok=True)
    start_agent(branch.stack, env)
    wait_for(lambda: _served(branch.url), 30, "the kiosk page served again")


def _served(url: str) -> bool:
    from tests.browser.kiosk_support import page_served

    return page_served(url)


async def until_screen(url: str, screen: str, timeout: float = 30) -> None:
    async with KioskSocket(url) as page:
        await page.wait(screen, timeout=timeout)


def test_restart_ends_a_job_left_on_the_ready_screen(branch: KioskBranch, phone: Phone) -> None:
    job_id = statement(phone)
    phone.wait_state(job_id, "ready")
    branch.kill_agent()
    assert journaled_jobs(branch.stack) == 1  # what the restarted agent will find
    restart_agent(branch)
    ended = phone.wait_state(job_id, "abandoned")
    assert ended.reason == "agent_restarted"
    wait_for(lambda: journaled_jobs(branch.stack) == 0, 10, "the end acknowledged, forgotten")
    time.sleep(2)  # nothing more happens to it: not pushed again, not ended twice
    assert (phone.job(job_id).state, phone.job(job_id).reason) == ("abandoned", "agent_restarted")
    asyncio.run(until_screen(branch.url, "attract"))


def test_nobody_at_the_terminal_ends_the_job(branch: KioskBranch, phone: Phone) -> None:
    job_id = statement(phone)
    # The kiosk page shows it, then closes (the customer walked away from both).
    asyncio.run(until_screen(branch.url, "phone_job"))
    # The agent tells the server "ready" through its outbox, after the screen has changed.
    phone.wait_state(job_id, "ready", timeout=10)
    ended = phone.wait_state(job_id, "abandoned", timeout=60)
    assert ended.reason == "timeout"
    asyncio.run(until_screen(branch.url, "attract"))
    assert journaled_jobs(branch.stack) == 0


def _held(stack: Stack, account: str) -> tuple[Decimal, Decimal]:
    rows = json.loads(ledger(stack, "balances", "--customer", "C-1", "--json"))
    listed = rows["accounts"] if isinstance(rows, dict) else rows
    found = next(row for row in listed if row["account_id"] == account)
    return Decimal(found["balance"]), Decimal(found["held"])


async def confirm_withdrawal(url: str) -> None:
    """At the kiosk: start the phone's job, confirm it (the agent dies under the customer)."""
    with contextlib.suppress(Exception):
        async with KioskSocket(url) as page:
            await page.wait("phone_job")
            await page.act("start")
            await page.wait("phone_job_confirm")
            await page.act("confirm")
            await page.wait("tube", timeout=30)


async def cancel_recovered(url: str) -> None:
    """At the kiosk after the restart: the recovered withdrawal shown; the customer cancels."""
    async with KioskSocket(url) as page:
        await page.wait("tube", lambda d: not d.get("finished"), timeout=60)
        await page.act("cancel")
        await page.wait("tube", lambda d: bool(d.get("finished")), timeout=60)
        await page.act("done")
        await page.wait("attract", timeout=30)  # ready for the next customer


def test_withdrawal_killed_after_approval_ends_as_its_transaction(
    branch: KioskBranch, phone: Phone
) -> None:
    stack = branch.stack
    before = _held(stack, "C1-CNY")
    code = bank_auth.totp(bank_auth.secret_bytes(SECRET), time.time())
    phone.api.Login(
        mpb.LoginRequest(session=phone.session, customer_id="C-1", password=PASSWORD, totp=code),
        timeout=30,
    )
    # Killed right after the bank approved the withdrawal (its hold placed) and the
    # terminal journaled it, before any cash moved.
    branch.kill_agent()
    restart_agent(branch, {"BRANCHLINE_FAILPOINTS": "tube_withdrawal.after=2"})
    job_id = phone.submit(
        "tube_withdrawal", auth="bank", account_id="C1-CNY", currency="CNY", amount="80"
    )
    asyncio.run(confirm_withdrawal(branch.url))
    wait_for(lambda: stack.procs["agent"].popen.poll() is not None, 30, "the failpoint kill")
    assert "failpoint tube_withdrawal.after=2" in stack.procs["agent"].log()
    assert phone.job(job_id).state == "running"
    assert _held(stack, "C1-CNY")[1] == before[1] + Decimal("80")  # approved: held
    with contextlib.closing(sqlite3.connect(stack.state_dir / "journal.db")) as conn:
        txn_kind, linked = conn.execute("SELECT txn_kind, txn_id FROM phone_job").fetchone()
        (txn_id,) = conn.execute(
            "SELECT id FROM txn WHERE kind = 'tube_withdrawal' AND finished = 0"
        ).fetchone()
    # The job asked for a tube transaction; killed before the engine's answer came back to
    # the flow, its id may not be linked yet: the recovery finds it (the first begun since).
    assert txn_kind == "tube" and linked in ("", txn_id)
    restart_agent(branch)
    asyncio.run(cancel_recovered(branch.url))
    ended = phone.wait_state(job_id, "abandoned")
    assert ended.reason == "agent_restarted" and not ended.receipt_reference
    # The engine undid what the bank approved, once: nothing paid, nothing held.
    server = desk(stack).GetTransaction(tpb.TubeRef(txn_id=txn_id), timeout=10)
    assert server.state == tpb.TUBE_STATE_CANCELED
    assert _held(stack, "C1-CNY") == before
    wait_for(lambda: journaled_jobs(stack) == 0, 10, "the end acknowledged, forgotten")


def test_out_of_service_ends_the_job(branch: KioskBranch, phone: Phone) -> None:
    stack = branch.stack
    job_id = statement(phone)
    phone.wait_state(job_id, "ready")
    sim = stack.sim()
    sim.Unplug(sim_control_pb2.SimDeviceRequest(device="pin_pad"), timeout=5)
    try:
        ended = phone.wait_state(job_id, "abandoned")
        assert ended.reason == "out_of_service"
    finally:
        sim.Replug(sim_control_pb2.SimDeviceRequest(device="pin_pad"), timeout=5)
        agent_ready(stack)
    assert journaled_jobs(stack) == 0
    asyncio.run(until_screen(branch.url, "attract", timeout=60))  # in service again


async def start_then_dropped(url: str) -> None:
    """At the kiosk: start a job the server has already ended; the terminal drops it."""
    async with KioskSocket(url) as page:
        await page.wait("phone_job")
        await page.act("start")
        # Straight to the end: no card asked for, nothing run.
        await page.wait("session_ended", lambda d: d.get("reason") == "canceled", timeout=30)
        await page.wait("attract", timeout=30)


def test_a_job_ended_at_the_server_is_not_carried_out(branch: KioskBranch, phone: Phone) -> None:
    """The phone leaves (its pairing canceled) while the job waits on the terminal's screen:
    the server ends it (``pairing_ended``) and the terminal, told so when the customer
    there presses start, runs nothing. Last: it ends this module's pairing."""
    # In service again after the PIN pad came back (the last test).
    wait_for(
        lambda: "statement_view" in phone.api.GetServices(phone.session, timeout=10).services,
        60,
        "the terminal in service again",
    )
    job_id = statement(phone)
    phone.wait_state(job_id, "ready")
    phone.api.Cancel(phone.session, timeout=10)
    with sqlite3.connect(branch.stack.root / "server.db") as conn:

        def ended() -> bool:
            row = conn.execute("SELECT state, reason FROM mobile_jobs WHERE job_id = ?", (job_id,))
            return tuple(row.fetchone()) == ("abandoned", "pairing_ended")

        wait_for(ended, 30, "the server's sweep ending the job")
    asyncio.run(start_then_dropped(branch.url))
    with sqlite3.connect(branch.stack.root / "server.db") as conn:
        row = conn.execute("SELECT state, reason FROM mobile_jobs WHERE job_id = ?", (job_id,))
        assert tuple(row.fetchone()) == ("abandoned", "pairing_ended")  # the first end, kept
    assert journaled_jobs(branch.stack) == 0
