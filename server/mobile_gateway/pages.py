"""The phone's pages, in zh-CN and en: the app shell, the typed-code form, refusals.

Server-rendered HTML with every text escaped; the script (``/static/app.js``) only fetches
the JSON API and fills in live data. The page a QR opens already lists the terminal's
services and the matching code (what the customer waits for after scanning), before any
script runs; the script then takes the list over (``data-live``) and makes it work. The catalogue for the script rides in a JSON data
block, which the CSP does not execute.
"""

from __future__ import annotations

import html
import json

from aiohttp import web

LANGUAGES = ("zh-CN", "en")
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "app.title": "Branchline on your phone",
        "pair.title": "Continue on your phone",
        "pair.code_label": "Code shown under the terminal's QR code",
        "pair.submit": "Connect",
        "pair.hint": "Scan the QR code on the terminal's screen, or type the code shown under it.",
        "paired.title": "Connected to the terminal",
        "paired.matching": "Check that the terminal shows the same code:",
        "paired.services": "Services this terminal can do now",
        "paired.none": "This terminal cannot take requests right now.",
        "paired.auth_terminal": "You can sign in at the terminal with your card and PIN.",
        "paired.cancel": "End",
        "paired.ended": "This session has ended. Scan the terminal's new code to start again.",
        "service.tube_deposit": "Deposit through the tube",
        "service.tube_withdrawal": "Withdraw through the tube",
        "service.statement_view": "Statement on this phone",
        "service.statement_print": "Printed statement",
        "service.cheque_book": "Cheque book",
        "service.video_teller": "Video teller",
        "error.handle_used": "This code was already used. Scan the new code on the terminal.",
        "error.handle_expired": "This code has expired. Scan the new code on the terminal.",
        "error.unknown_handle": "This is not a code the terminal showed. Scan the QR code again.",
        "error.terminal_busy": "The terminal is already continuing on another phone.",
        "error.handle_bound_to_terminal": "This code belongs to another terminal.",
        "error.pairing_ended": "This session has ended. Scan the terminal's new code.",
        "error.unavailable": "The bank cannot be reached. Please try again shortly.",
        "error.rate_limited": "Too many attempts. Please wait a moment.",
        "error.generic": "That did not work.",
        "error.title": "Cannot continue",
        "error.back": "Type a code instead",
        "job.auth": "Sign in",
        "job.auth_terminal": "With my card and PIN at the terminal",
        "job.auth_bank": "With mobile banking here",
        "job.login": "Mobile banking",
        "job.customer_id": "Customer id",
        "job.password": "Password",
        "job.totp": "Code from your authenticator",
        "job.sign_in": "Sign in",
        "job.account_id": "Account",
        "job.asset_kind": "What",
        "job.currency": "Currency",
        "job.amount": "Amount",
        "job.period_from": "From",
        "job.period_to": "To",
        "job.cheque_leaves": "Leaves",
        "job.business_type": "Business",
        "job.submit": "Send to the terminal",
        "job.quote": "Rate",
        "job.queue": "Place in queue:",
        "job.receipt": "Receipt:",
        "job.recordings": "Recordings of this transaction",
        "job.recordings_wait": "Looking for the recordings…",
        "job.watch": "Watch",
        "job.state.submitted": "Sent; waiting for the terminal.",
        "job.state.received": "The terminal has it.",
        "job.state.ready": "Ready on the terminal: press Start there.",
        "job.state.authenticating": "Signing in at the terminal.",
        "job.state.confirming": "Confirm on the terminal's screen.",
        "job.state.running": "Being carried out.",
        "job.state.done": "Done.",
        "job.state.failed": "Not done.",
        "job.state.canceled": "Canceled.",
        "job.state.abandoned": "Not finished: the terminal stopped it.",
        "job.reason.agent_restarted": "The terminal restarted.",
        "job.reason.timeout": "Nobody continued at the terminal in time.",
        "job.reason.out_of_service": "The terminal went out of service.",
        "job.reason.terminal_offline": "The terminal lost its connection to the bank.",
        "job.reason.pairing_ended": "This phone's session ended before it started.",
        "job.reason.transaction_unrecoverable": "Bank staff will check the transaction.",
        "job.reason.session_ended": "The session at the terminal ended before it was done.",
        "lang.switch": "中文",
    },
    "zh-CN": {
        "app.title": "手机办理",
        "pair.title": "用手机继续办理",
        "pair.code_label": "终端二维码下方显示的代码",
        "pair.submit": "连接",
        "pair.hint": "请扫描终端屏幕上的二维码,或输入二维码下方的代码。",
        "paired.title": "已连接终端",
        "paired.matching": "请确认终端上显示相同的核对码:",
        "paired.services": "本终端现在可办理的业务",
        "paired.none": "本终端现在无法办理业务。",
        "paired.auth_terminal": "可在终端上插卡并输入密码进行身份验证。",
        "paired.cancel": "结束",
        "paired.ended": "本次办理已结束。请扫描终端上的新二维码重新开始。",
        "service.tube_deposit": "气动管道存款",
        "service.tube_withdrawal": "气动管道取款",
        "service.statement_view": "在手机上查看对账单",
        "service.statement_print": "打印对账单",
        "service.cheque_book": "购买支票",
        "service.video_teller": "远程视频柜员",
        "error.handle_used": "此二维码已被使用。请扫描终端上的新二维码。",
        "error.handle_expired": "此二维码已过期。请扫描终端上的新二维码。",
        "error.unknown_handle": "这不是终端显示的代码。请重新扫描二维码。",
        "error.terminal_busy": "该终端已在另一部手机上继续办理。",
        "error.handle_bound_to_terminal": "此代码属于另一台终端。",
        "error.pairing_ended": "本次办理已结束。请扫描终端上的新二维码。",
        "error.unavailable": "暂时无法连接银行,请稍后再试。",
        "error.rate_limited": "尝试次数过多,请稍候。",
        "error.generic": "操作未成功。",
        "error.title": "无法继续",
        "error.back": "改为输入代码",
        "job.auth": "身份验证",
        "job.auth_terminal": "在终端上插卡并输入密码",
        "job.auth_bank": "在此用手机银行登录",
        "job.login": "手机银行",
        "job.customer_id": "客户号",
        "job.password": "登录密码",
        "job.totp": "验证器上的动态码",
        "job.sign_in": "登录",
        "job.account_id": "账户",
        "job.asset_kind": "类别",
        "job.currency": "币种",
        "job.amount": "金额",
        "job.period_from": "起始日期",
        "job.period_to": "截止日期",
        "job.cheque_leaves": "张数",
        "job.business_type": "业务类型",
        "job.submit": "发送到终端",
        "job.quote": "汇率",
        "job.queue": "排队位置:",
        "job.receipt": "回单号:",
        "job.recordings": "本笔交易的录像",
        "job.recordings_wait": "正在查找录像…",
        "job.watch": "观看",
        "job.state.submitted": "已发送,等待终端。",
        "job.state.received": "终端已收到。",
        "job.state.ready": "终端已就绪:请在终端上按“开始”。",
        "job.state.authenticating": "正在终端上验证身份。",
        "job.state.confirming": "请在终端屏幕上确认。",
        "job.state.running": "正在办理。",
        "job.state.done": "已完成。",
        "job.state.failed": "未完成。",
        "job.state.canceled": "已取消。",
        "job.state.abandoned": "未完成:终端已中止。",
        "job.reason.agent_restarted": "终端已重新启动。",
        "job.reason.timeout": "终端上长时间无人继续操作。",
        "job.reason.out_of_service": "终端暂停服务。",
        "job.reason.terminal_offline": "终端与银行的连接中断。",
        "job.reason.pairing_ended": "手机会话在开始办理前已结束。",
        "job.reason.transaction_unrecoverable": "银行工作人员将核查该笔交易。",
        "job.reason.session_ended": "终端上的会话在办理完成前已结束。",
        "lang.switch": "English",
    },
}


def language(request: web.Request) -> str:
    wanted = request.query.get("lang", "")
    if wanted in LANGUAGES:
        return wanted
    accept = request.headers.get("Accept-Language", "").strip().lower()
    return "en" if accept.startswith("en") else "zh-CN"


def t(lang: str, key: str) -> str:
    return TEXT[lang].get(key, TEXT[lang]["error.generic"])


def _shell(lang: str, title: str, body: str, status: int = 200) -> web.Response:
    other = "en" if lang == "zh-CN" else "zh-CN"
    catalogue = json.dumps(TEXT[lang], ensure_ascii=False).replace("<", "\\u003c")
    page = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{html.escape(title)}</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="stylesheet" href="/static/style.css">
<script type="application/json" id="catalogue">{catalogue}</script>
<script type="module" src="/static/app.js"></script>
<link rel="modulepreload" href="/static/jobs.js">
</head>
<body>
<header><a href="?lang={other}" lang="{other}" data-action="language">{html.escape(t(lang, "lang.switch"))}</a></header>
<main id="main">
{body}
</main>
</body>
</html>
"""
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def code_form(lang: str, status: int = 200, error_key: str = "") -> web.Response:
    error = (
        f'<p role="alert" data-role="error">{html.escape(t(lang, error_key))}</p>'
        if error_key
        else '<p role="alert" data-role="error" hidden></p>'
    )
    body = f"""<section data-screen="pair" aria-labelledby="title">
<h1 id="title">{html.escape(t(lang, "pair.title"))}</h1>
<p>{html.escape(t(lang, "pair.hint"))}</p>
{error}
<form id="pair-form" data-role="pair-form">
<label for="short_code">{html.escape(t(lang, "pair.code_label"))}</label>
<input id="short_code" name="short_code" autocomplete="off" autocapitalize="characters"
 inputmode="text" maxlength="16" required>
<button type="submit" data-action="pair">{html.escape(t(lang, "pair.submit"))}</button>
</form>
</section>"""
    return _shell(lang, t(lang, "pair.title"), body, status)


def _first_list(lang: str, services: tuple[str, ...]) -> str:
    """The service list as the script renders it; its buttons disabled until the script
    replaces them with working ones."""
    if not services:
        return f"<li>{html.escape(t(lang, 'paired.none'))}</li>"
    return "".join(
        f'<li data-service="{html.escape(s)}"><button type="button" data-action="open" disabled>'
        f"{html.escape(t(lang, f'service.{s}'))}</button></li>"
        for s in services
    )


def paired_page(
    lang: str,
    services: tuple[str, ...] | None = None,
    matching_code: str = "",
    auth_at_terminal: bool = False,
) -> web.Response:
    """``services``: the list now (None: the script fetches it)."""
    code = html.escape(matching_code)
    listed = _first_list(lang, services) if services is not None else ""
    auth_hidden = "" if auth_at_terminal else " hidden"
    body = f"""<section data-screen="paired" aria-labelledby="title">
<h1 id="title">{html.escape(t(lang, "paired.title"))}</h1>
<p>{html.escape(t(lang, "paired.matching"))}
 <strong data-role="matching-code" class="matching" data-code="{code}">{code}</strong></p>
<h2>{html.escape(t(lang, "paired.services"))}</h2>
<ul data-role="services" aria-live="polite">{listed}</ul>
<p data-role="auth"{auth_hidden}>{html.escape(t(lang, "paired.auth_terminal"))}</p>
<p role="alert" data-role="error" hidden></p>
<button type="button" data-action="cancel">{html.escape(t(lang, "paired.cancel"))}</button>
</section>"""
    return _shell(lang, t(lang, "paired.title"), body)


def refusal_page(lang: str, status: int, reason: str) -> web.Response:
    key = f"error.{reason}"
    message = t(lang, key) if key in TEXT[lang] else t(lang, "error.generic")
    body = f"""<section data-screen="refused" data-reason="{html.escape(reason)}"
 aria-labelledby="title">
<h1 id="title">{html.escape(t(lang, "error.title"))}</h1>
<p role="alert" data-role="error">{html.escape(message)}</p>
<p><a href="/">{html.escape(t(lang, "error.back"))}</a></p>
</section>"""
    return _shell(lang, t(lang, "error.title"), body, status)
