"""``branchline-teller``: the staff client of the dispatch server, one module per role.

Signing in is choosing a certificate: ``--tls-dir PKI --as teller:T01`` uses
``PKI/tellers/T01.pem`` (``lobby:ID`` → ``lobby/``, ``operator:NAME`` → ``operators/``,
``terminal:ID`` → ``terminals/``). ``whoami`` shows who the server takes you for.

    branchline-teller --as teller:T01 duty on
    branchline-teller --as teller:T01 watch                # offers and task events, live
    branchline-teller --as teller:T01 accept TASK | wait TASK --minutes 5 | reject TASK
    branchline-teller --as teller:T01 materials TASK --save DIR
    branchline-teller --as teller:T01 result TASK success | failure --reason "..."
    branchline-teller --as lobby:L01 roster | designate TASK T02 | reassign TASK T03
    branchline-teller --as operator:ops admin add-teller T01 --name ... --branch B --skill loan
    branchline-teller --as terminal:MC-1 counter send --to B --type loan --title ...
    branchline-teller --as teller:T01 call queue | current --wait 60 | answer | end CALL
    branchline-teller --as teller:T01 call signal CALL offer --file offer.sdp
    branchline-teller --as teller:T01 call signals CALL          # the terminal's SDP / ICE
    branchline-teller --as teller:T01 call device CALL read_card | pin | print --line ... --wait
    branchline-teller --as teller:T01 call results CALL          # device outcomes, live
    branchline-teller --as teller:BO1 tube list | show TXN | watch | receive TXN --carrier N
    branchline-teller --as teller:BO1 tube count TXN --kind cash --currency CNY --amount 490.00
    branchline-teller --as teller:BO1 tube send TXN --carrier N | incidents | resolve ID ...

Every command that prints data takes ``--json``. Exit 0 on success, 1 when the server
refuses (stderr names the status and the field from the error details; with ``--json`` the
details are printed as data: status, reason, field, message), 2 for usage errors.

Modules: ``main`` (the parser and the error boundary), ``client`` (certificates, channel),
``output`` (lines and JSON), ``watch`` (the one resumable watch with backoff), and one per
role: ``teller``, ``lobby``, ``backoffice`` (tube desk), ``operator`` (branches and staff
records), ``counter`` (the mobile counter's side), ``calls`` (video-teller calls).
"""
