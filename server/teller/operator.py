"""An operator's commands (``admin ...``): branches and staff records, any branch's roster."""

from __future__ import annotations

import argparse
from typing import Any

from branchline.server.teller.client import Client
from branchline.server.teller.lobby import cmd_roster
from branchline.server.teller.output import emit
from branchline.server.teller.views import staff_line
from branchline.v1 import dispatch_pb2 as pb


def cmd_admin(client: Client, args: argparse.Namespace) -> int:
    if args.admin_command == "add-branch":
        branch = client.call(
            client.admin.AddBranch,
            pb.AddBranchRequest(
                branch_id=args.id, name=args.name, routing_strategy=args.strategy or ""
            ),
        )
        emit(args, branch, f"branch {branch.branch_id} ({branch.name})")
    elif args.admin_command == "branches":
        reply = client.call(client.admin.ListBranches, pb.ListBranchesRequest())
        lines = [f"{b.branch_id}  {b.name}  {b.routing_strategy or '-'}" for b in reply.branches]
        emit(args, reply, "\n".join(lines) or "(no branches)")
    elif args.admin_command == "add-teller":
        member = client.call(
            client.admin.AddTeller,
            pb.AddTellerRequest(
                teller_id=args.id, name=args.name, branch=args.branch, skills=args.skill or []
            ),
        )
        emit(args, member, staff_line(member))
    elif args.admin_command == "add-lobby-manager":
        member = client.call(
            client.admin.AddLobbyManager,
            pb.AddLobbyManagerRequest(manager_id=args.id, name=args.name, branch=args.branch),
        )
        emit(args, member, staff_line(member))
    else:
        args.admin = True
        return cmd_roster(client, args)
    return 0


def add_commands(sub: Any) -> None:
    admin = sub.add_parser("admin", help="operators: branches and staff records")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    admin.set_defaults(handler=cmd_admin)

    def admin_command(name: str, help: str) -> Any:
        p = admin_sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true")
        return p

    p = admin_command("add-branch", "create or update a branch")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--strategy", choices=["longest_idle", "least_handled", "random"])
    admin_command("branches", "list branches")
    p = admin_command("add-teller", "create or update a teller")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--branch", required=True)
    p.add_argument("--skill", action="append", help="business type (repeatable)")
    p = admin_command("add-lobby-manager", "create or update a lobby manager")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--branch", required=True)
    p = admin_command("roster", "any branch's roster")
    p.add_argument("--branch")
