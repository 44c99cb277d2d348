"""``/review``: the moderators' page, and its JSON API under ``/review/api``.

Behind the API key like every other route: an API client sends ``Authorization: Bearer KEY``; a browser
signs in once on the page, which stores the key in an HttpOnly, SameSite=Strict cookie scoped to
``/review`` (so other sites cannot make the browser send it). A review is stored with the reviewer's key id.

- ``GET /review``: the page (a sign-in form when no valid key came with the request);
- ``GET /review/api/queue?order=uncertainty|flagged|newest&limit=N``: unreviewed items;
- ``POST /review/api/labels`` ``{"audit_id": 12, "correct": {"prompt_harmful": false}, "categories": [...]}``;
- ``GET /review/api/labels?limit=N``: the latest reviews; ``GET /review/api/stats``: counts;
- ``POST /review/api/login`` ``{"key": "..."}`` and ``POST /review/api/logout``: the page's cookie.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ...errors import InputError
from ...taxonomy import CATEGORY_NAMES
from ..deps import RuntimeDep
from ..errors import APIError
from ..review import ORDERS, item_view, make_label, queue

router = APIRouter(tags=["review"])
COOKIE = "railguard_review_key"
COOKIE_PATH = "/review"


def _reviewer(runtime: Any, authorization: str | None, cookie: str | None) -> str | None:
    """The key id of the header's key, else of the cookie's; 401 when the server has keys and neither is valid."""
    if authorization or not cookie:
        return runtime.keys.identify(authorization)
    return runtime.keys.identify(f"Bearer {cookie}")


Auth = Annotated[str | None, Header()]
KeyCookie = Annotated[str | None, Cookie(alias=COOKIE)]


class LabelIn(BaseModel):
    audit_id: int = Field(ge=1)
    correct: dict[str, bool] = Field(description="task -> whether the guard's decision was right")
    categories: list[str] = Field(default_factory=list, description="categories that apply (optional)")


class LoginIn(BaseModel):
    key: str = Field(min_length=1, max_length=4096)


def _store(runtime: Any) -> Any:
    if runtime.store is None:
        raise APIError(503, "the audit store is not open", code="audit_unavailable")
    return runtime.store


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page(runtime: RuntimeDep, authorization: Auth = None, key: KeyCookie = None) -> HTMLResponse:
    try:
        reviewer = _reviewer(runtime, authorization, key)
    except APIError:
        return HTMLResponse(_page(signed_in=False, reviewer=None), status_code=401)
    return HTMLResponse(_page(signed_in=True, reviewer=reviewer))


@router.post("/review/api/login", include_in_schema=False)
async def login(body: LoginIn, request: Request, runtime: RuntimeDep) -> Response:
    reviewer = runtime.keys.identify(f"Bearer {body.key}")
    response = JSONResponse({"reviewer": reviewer})
    if runtime.keys.enabled:
        response.set_cookie(COOKIE, body.key, httponly=True, samesite="strict", path=COOKIE_PATH,
                            secure=request.url.scheme == "https")
    return response


@router.post("/review/api/logout", include_in_schema=False)
async def logout() -> Response:
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


@router.get("/review/api/queue")
async def review_queue(runtime: RuntimeDep, order: str = "uncertainty", limit: int = 20, authorization: Auth = None,
                       key: KeyCookie = None) -> dict[str, Any]:
    _reviewer(runtime, authorization, key)
    if order not in ORDERS:
        raise APIError(422, f"order must be one of {', '.join(ORDERS)}", code="invalid_value", param="order")
    if not 1 <= limit <= 500:
        raise APIError(422, "limit must be between 1 and 500", code="invalid_value", param="limit")
    store = _store(runtime)
    items = await runtime.audit.run_alone(lambda: queue(store, order, limit))
    return {"order": order, "items": [item_view(r) for r in items], "categories": list(CATEGORY_NAMES)}


@router.post("/review/api/labels")
async def add_label(body: LabelIn, runtime: RuntimeDep, authorization: Auth = None,
                    key: KeyCookie = None) -> dict[str, Any]:
    reviewer = _reviewer(runtime, authorization, key)
    store = _store(runtime)

    def write() -> Any:
        record = store.get(body.audit_id)
        if record is None:
            raise APIError(404, f"no audit row {body.audit_id}", code="not_found", param="audit_id")
        try:
            label = make_label(record, body.correct, categories=body.categories, reviewer=reviewer)
        except InputError as exc:
            raise APIError(422, str(exc), code="invalid_value") from None
        return label, store.write_label(label)

    label, label_id = await runtime.audit.run_alone(write)
    out = label.to_dict()
    out["id"] = label_id
    return out


@router.get("/review/api/labels")
async def list_labels(runtime: RuntimeDep, limit: int = 100, authorization: Auth = None,
                      key: KeyCookie = None) -> dict[str, Any]:
    _reviewer(runtime, authorization, key)
    store = _store(runtime)
    labels = await runtime.audit.run_alone(lambda: list(store.iter_labels()))
    return {"labels": [lab.to_dict() for lab in labels[-max(1, min(limit, 10_000)):]], "total": len(labels)}


@router.get("/review/api/stats")
async def stats(runtime: RuntimeDep, authorization: Auth = None, key: KeyCookie = None) -> dict[str, Any]:
    _reviewer(runtime, authorization, key)
    store = _store(runtime)

    def count() -> dict[str, Any]:
        counts = store.review_counts()
        return {"audited": store.count(), "reviewed_items": len(counts), "reviews": sum(counts.values()),
                "reviewed_twice": sum(1 for n in counts.values() if n >= 2)}

    return await runtime.audit.run_alone(count)


def _page(*, signed_in: bool, reviewer: str | None) -> str:
    who = html.escape(reviewer or "no key (open server)")
    body = _REVIEW_BODY.replace("{reviewer}", who) if signed_in else _LOGIN_BODY
    return _SHELL.replace("{body}", body)


_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>railguard review</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
header h1{font-size:1.05em;margin:0} header .sp{flex:1} main{max-width:60em;margin:1em auto;padding:0 1em}
.card{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:1em 1.2em;margin-bottom:1em}
pre.text{white-space:pre-wrap;word-break:break-word;background:#f0f2f5;padding:.8em;border-radius:6px;max-height:22em;overflow:auto}
.muted{color:#667} table{border-collapse:collapse;width:100%} td,th{padding:.35em .5em;border-bottom:1px solid #eee;text-align:left}
.flag{color:#b3261e;font-weight:600} .ok{color:#137333} button{font:inherit;padding:.25em .8em;border-radius:5px;border:1px solid #aab;background:#fff;cursor:pointer}
button.on-correct{background:#e6f4ea;border-color:#137333} button.on-incorrect{background:#fce8e6;border-color:#b3261e}
.cats label{display:inline-block;margin:.15em .6em .15em 0;font-size:.92em} kbd{border:1px solid #bbb;border-radius:3px;padding:0 .3em;font-size:.85em;background:#fafafa}
#status{min-height:1.3em}
</style></head><body>{body}</body></html>"""

_LOGIN_BODY = """<header><h1>railguard review</h1></header><main><div class="card">
<h2>Sign in</h2><p>Enter one of this server's API keys. The key is kept in an HttpOnly cookie for /review only.</p>
<form id="login"><input id="key" type="password" autocomplete="current-password" size="40" aria-label="API key" autofocus>
<button id="signin" type="submit">Sign in</button></form><p id="status" class="flag" role="alert"></p></div></main>
<script>
document.getElementById('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await fetch('/review/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({key: document.getElementById('key').value}), credentials: 'same-origin'});
  if (r.ok) { location.reload(); return; }
  const err = await r.json().catch(() => ({}));
  document.getElementById('status').textContent = (err.error && err.error.message) || ('sign-in failed: ' + r.status);
});
</script>"""

_REVIEW_BODY = """<header><h1>railguard review</h1><span class="muted">reviewer: <span id="reviewer">{reviewer}</span></span>
<span class="sp"></span><label>order <select id="order"><option value="uncertainty">most uncertain first</option>
<option value="flagged">flagged first</option><option value="newest">newest first</option></select></label>
<span id="stats" class="muted"></span><button id="logout">sign out</button></header>
<main><div id="item" class="card"><p class="muted">loading…</p></div>
<p id="status" role="status"></p>
<div class="card muted" id="help">Keys: <kbd>1</kbd>–<kbd>5</kbd> toggle a task between correct and incorrect ·
<kbd>a</kbd> all correct and submit · <kbd>Enter</kbd> submit the marks · <kbd>s</kbd> skip ·
<kbd>r</kbd> reload the queue. Categories: click to pick those that apply (optional).</div></main>
<script>
"use strict";
let queue = [], pos = 0, marks = {}, categories = [];
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function api(path, opts) {
  const r = await fetch(path, Object.assign({credentials: 'same-origin'}, opts || {}));
  if (r.status === 401) { location.reload(); throw new Error('signed out'); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error && data.error.message) || ('HTTP ' + r.status));
  return data;
}
async function loadStats() {
  const s = await api('/review/api/stats');
  $('stats').textContent = s.reviews + ' reviews of ' + s.audited + ' audited items';
}
async function load() {
  const data = await api('/review/api/queue?limit=50&order=' + encodeURIComponent($('order').value));
  queue = data.items; categories = data.categories; pos = 0; show(); loadStats();
}
function current() { return queue[pos]; }
function show() {
  const it = current(), box = $('item');
  if (!it) { box.innerHTML = '<p id="empty">Nothing left to review.</p>'; return; }
  marks = {}; Object.keys(it.decisions).forEach((t) => { marks[t] = true; });
  const text = it.text_stored ? '<pre class="text" id="text">' + esc(it.text) + '</pre>'
    : '<p class="muted" id="text">The raw text is not stored (store_text is off): ' + it.input_chars +
      ' characters, sha256 ' + esc(it.text_sha256) + '…</p>';
  const rows = Object.keys(it.decisions).map((t, i) =>
    '<tr data-task="' + esc(t) + '"><td><kbd>' + (i + 1) + '</kbd> ' + esc(t) + '</td><td>' +
    (it.decisions[t] ? '<span class="flag">yes</span>' : '<span class="ok">no</span>') + '</td><td>' +
    (it.scores[t] == null ? '–' : Number(it.scores[t]).toFixed(3)) + '</td><td>' +
    '<button class="mark" data-task="' + esc(t) + '" data-value="1">correct</button> ' +
    '<button class="mark" data-task="' + esc(t) + '" data-value="0">incorrect</button></td></tr>').join('');
  const top = Object.entries(it.categories).slice(0, 3).map(([c, v]) => esc(c) + ' ' + Number(v).toFixed(2)).join(', ');
  const cats = categories.map((c) => '<label><input type="checkbox" class="cat" value="' + esc(c) + '"> ' + esc(c) + '</label>').join('');
  box.innerHTML = '<p class="muted">item ' + (pos + 1) + ' of ' + queue.length + ' · audit #' + it.id + ' · ' + esc(it.time) +
    ' · guard ' + esc(it.guard) + ' · ' + (it.flagged ? '<span class="flag">flagged</span>' : 'not flagged') +
    (it.error ? ' · <span class="flag">error: ' + esc(it.error) + '</span>' : '') + '</p>' + text +
    '<table><thead><tr><th>task</th><th>guard said</th><th>score</th><th>your mark</th></tr></thead><tbody>' + rows +
    '</tbody></table><p class="muted">top categories: ' + (top || '–') + '</p><div class="cats">' + cats + '</div>' +
    '<p><button id="submit">Submit <kbd>Enter</kbd></button> <button id="allok">All correct <kbd>a</kbd></button> ' +
    '<button id="skip">Skip <kbd>s</kbd></button></p>';
  box.querySelectorAll('button.mark').forEach((b) => b.addEventListener('click', () => {
    marks[b.dataset.task] = b.dataset.value === '1'; paint(); }));
  $('submit').addEventListener('click', submit); $('skip').addEventListener('click', next);
  $('allok').addEventListener('click', allCorrect); paint();
}
function paint() {
  document.querySelectorAll('button.mark').forEach((b) => {
    const on = marks[b.dataset.task] === (b.dataset.value === '1');
    b.classList.toggle('on-correct', on && b.dataset.value === '1');
    b.classList.toggle('on-incorrect', on && b.dataset.value === '0');
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
  });
}
function next() { pos += 1; if (pos >= queue.length) { load(); } else { show(); } }
function allCorrect() { Object.keys(marks).forEach((t) => { marks[t] = true; }); submit(); }
async function submit() {
  const it = current(); if (!it) return;
  const picked = Array.from(document.querySelectorAll('input.cat:checked')).map((c) => c.value);
  try {
    await api('/review/api/labels', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({audit_id: it.id, correct: marks, categories: picked})});
    $('status').textContent = 'saved review of #' + it.id;
    next(); loadStats();
  } catch (e) { $('status').textContent = 'not saved: ' + e.message; }
}
document.addEventListener('keydown', (e) => {
  if (e.target.tagName === 'INPUT' && e.target.type !== 'checkbox' || e.target.tagName === 'SELECT') return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const it = current();
  if (e.key >= '1' && e.key <= '9' && it) {
    const t = Object.keys(it.decisions)[Number(e.key) - 1];
    if (t) { marks[t] = !marks[t]; paint(); }
  } else if (e.key === 'Enter') { e.preventDefault(); submit(); }
  else if (e.key === 'a') { allCorrect(); }
  else if (e.key === 's') { next(); }
  else if (e.key === 'r') { load(); }
});
$('order').addEventListener('change', load);
$('logout').addEventListener('click', async () => { await fetch('/review/api/logout', {method: 'POST'}); location.reload(); });
load().catch((e) => { $('status').textContent = e.message; });
</script>"""
