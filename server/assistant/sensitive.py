"""Sensitive topics: the assistant never answers these, it hands over to a person.

A question about a dispute, fraud, a lost or retained card, or a bereavement needs a human
(judgement, identity checks, empathy), however well a knowledge-base entry might match.
Patterns in both languages, checked before any matching; the first topic found wins, in
the order below (fraud before dispute: "someone took money from my account" is fraud).
"""

from __future__ import annotations

import re

from branchline.server.assistant.matcher import normalize

TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "bereavement",
        (
            r"\b(died|dead|death|deceased|passed away|passed on|funeral|bereave\w*|"
            r"executor|probate|estate of|late (husband|wife|father|mother|son|daughter))\b",
            r"去世|过世|逝世|身故|死亡|病故|离世|遗产|继承|丧事|已故|走了.*账户",
        ),
    ),
    (
        "fraud",
        (
            r"\b(fraud\w*|scam\w*|phishing|stolen|hack\w*|skimm\w*|"
            r"unauthori[sz]ed|did ?n[o']?t (make|authori[sz]e)|not me|"
            r"someone (used|took|stole|withdrew|has)|identity theft|impersonat\w*)\b",
            r"\b(stranger|someone|somebody|unknown (person|people))\b.{0,40}"
            r"\b(took|taken|withdr\w*|transferr?\w*|moved|spent|used|stole|emptied)\b",
            r"诈骗|被骗|骗子|欺诈|盗刷|被盗|盗用|冒用|冒充|钓鱼|不是我.{0,6}(取|转|消费|操作)|"
            r"陌生.{0,4}(扣款|转账|交易)|账户.{0,4}(异常|被人)|"
            r"(陌生人|别人|有人|他人).{0,10}(转走|取走|盗|刷走|拿走|偷)",
        ),
    ),
    (
        "retained_card",
        (
            r"\b(card (was |got |is )?(retained|swallowed|captured|kept|eaten|stuck)|"
            r"(kept|ate|swallowed|took|retained|captured) my card|card (did ?n[o']?t|never) "
            r"(come|came) (back|out))\b",
            r"吞卡|卡被吞|吞.{0,4}卡|卡.{0,3}吞|卡.{0,4}(没退|没有退|没吐|没有吐|退不出|卡住|被扣|被留)",
        ),
    ),
    (
        "lost_card",
        (
            r"\b(lost|misplaced|can'?t find|cannot find) (my |the )?(bank ?|debit |credit )?"
            r"card\b|\bcard (is |was )?(lost|missing)\b|\breport (a |my )?(lost|missing)\b",
            r"卡.{0,3}(丢|丢失|遗失|不见|找不到|掉了)|(丢|丢了|丢失|遗失|找不到).{0,4}卡|挂失",
        ),
    ),
    (
        "dispute",
        (
            r"\b(disput\w*|chargeback|complain\w*|charged twice|double charged|"
            r"wrong (amount|charge)|overcharg\w*|refund (my|the) (fee|charge)|"
            r"(money|cash) (is |was )?missing|(gave|dispensed) (me )?(less|too little)|"
            r"did ?n[o']?t (get|receive) (my |the )?(money|cash))\b",
            r"争议|投诉|申诉|扣错|多扣|重复扣|乱扣|少给|少了.{0,3}钱|钱.{0,4}(没到|不见|少了)|"
            r"没(收到|拿到|出).{0,2}(钱|现金|款)|不认.{0,4}(这笔|交易)",
        ),
    ),
)

_COMPILED = tuple((topic, tuple(re.compile(p) for p in pats)) for topic, pats in TOPICS)


def sensitive_topic(text: str) -> str:
    """The sensitive topic ``text`` raises ("fraud", ...), or "" for none."""
    norm = normalize(text)
    for topic, patterns in _COMPILED:
        if any(p.search(norm) for p in patterns):
            return topic
    return ""
