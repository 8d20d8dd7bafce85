"""``DispatchService``: the task operations bound to one ``Core`` (the facade the servicers,
the calls package, the CLI and the tests use).

Each operation is a plain function of its role's module taking the core first; binding
them here as methods keeps one object to pass around without one module holding them all.
"""

from __future__ import annotations

from branchline.server.dispatch.tasks import (
    duty,
    lifecycle,
    materials,
    offers,
    reads,
    retention,
    sweep,
)
from branchline.server.dispatch.tasks import roster as records
from branchline.server.dispatch.tasks.core import Core


class DispatchService(Core):
    # Operators: branches and staff records; who is on the roster.
    add_branch = records.add_branch
    list_branches = records.list_branches
    add_teller = records.add_teller
    add_lobby_manager = records.add_lobby_manager
    roster = records.roster
    staff = records.staff
    # Staff: duty and presence.
    set_duty = duty.set_duty
    set_presence = duty.set_presence
    # A task's life, from the origin and from the tellers.
    send_task = lifecycle.send_task
    cancel_task = lifecycle.cancel_task
    answer_offer = lifecycle.answer_offer
    reassign = lifecycle.reassign
    designate = lifecycle.designate
    complete = lifecycle.complete
    upload_material = materials.upload_material
    get_material = materials.get_material
    # Reads and the event feed.
    get_task = reads.get_task
    list_tasks = reads.list_tasks
    open_tasks = reads.open_tasks
    read_task = reads.read_task
    events_after = reads.events_after
    latest_event_id = reads.latest_event_id
    # The sweep.
    expire_offers = sweep.expire_offers
    match_free_tellers = sweep.match_free_tellers
    # Materials of tasks ended longer ago than the retention lose their bytes.
    sweep_materials = retention.sweep_materials
    # A teller's load going down inside a transaction (the calls package frees tellers).
    release = offers.release
