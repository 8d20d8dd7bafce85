"""A lobby manager's commands: the branch's roster, and designating a task at the lobby."""

from __future__ import annotations

import argparse

from branchline.server.teller.client import Client
from branchline.server.teller.output import emit
from branchline.server.teller.teller import Command, cmd_reassign
from branchline.server.teller.views import staff_line
from branchline.v1 import dispatch_pb2 as pb


def cmd_roster(client: Client, args: argparse.Namespace) -> int:
    """Your branch's roster; operators (``admin roster``) any branch's."""
    method = client.admin.GetRoster if args.admin else client.dispatch.GetRoster
    roster = client.call(method, pb.GetRosterRequest(branch=args.branch or ""))
    lines = [staff_line(m) for m in (*roster.lobby_managers, *roster.tellers)]
    emit(args, roster, "\n".join(lines) or "(nobody)")
    return 0


def add_commands(command: Command) -> None:
    p = command("roster", cmd_roster, "tellers and lobby managers of your branch")
    p.add_argument("--branch")
    p.set_defaults(admin=False)
    p = command("designate", cmd_reassign, "lobby managers: give a task at the lobby to a teller")
    p.add_argument("task")
    p.add_argument("teller")
    p.add_argument("--reason")
