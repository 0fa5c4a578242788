"""The operator station's web server: aiohttp (HTTP + WebSocket) in its own thread and event loop.

The node hands it snapshots (`publish`, thread-safe) and a `perform` callable that carries an
authorised action to the cell and returns a concurrent Future of its ActionResult. Every client
gets the latest snapshot on connecting and then each change, coalesced to at most one push per
`push_period_s`. The page and its script are served from the package (no CDN, no network), with a
Content-Security-Policy that forbids loading anything from elsewhere.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import ssl
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import WSMsgType, web

from smartcell.hmi.auth import Refusal, Session, Sessions
from smartcell.hmi.view import ACTIONS

STATIC_DIR = Path(__file__).with_name('static')
CSP = "default-src 'self'; img-src 'self' data:; connect-src 'self'; style-src 'self'; script-src 'self'"


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


Perform = Callable[[str, Session], 'concurrent.futures.Future[ActionResult]']


class HmiServer:
    def __init__(self, sessions: Sessions, perform: Perform, *, action_timeout_s: float = 5.0,
                 push_period_s: float = 0.05, static_dir: Path = STATIC_DIR) -> None:
        self._sessions = sessions
        self._perform = perform
        self._action_timeout_s = action_timeout_s
        self._push_period_s = push_period_s
        self._static_dir = static_dir
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._clients: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.port = 0

    # -- called from the node's thread -------------------------------------------------------------
    def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None, timeout_s: float = 10.0) -> int:
        """Serve on host:port (0: a free port); returns the bound port once listening. OSError if it cannot."""
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(host, port, ssl_context, ready),
                                        name='hmi-web', daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=timeout_s)
        return self.port

    def publish(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self._snapshot = snapshot
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None and not loop.is_closed():
            loop.call_soon_threadsafe(changed.set)

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    # -- the web thread ----------------------------------------------------------------------------
    def _run(self, host: str, port: int, ssl_context: ssl.SSLContext | None,
             ready: concurrent.futures.Future[int]) -> None:
        try:
            asyncio.run(self._serve(host, port, ssl_context, ready))
        except BaseException as exc:  # noqa: BLE001 - reported to start(), which raises it in the node
            if not ready.done():
                ready.set_exception(exc)

    async def _serve(self, host: str, port: int, ssl_context: ssl.SSLContext | None,
                     ready: concurrent.futures.Future[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed, self._stopped = asyncio.Event(), asyncio.Event()
        app = web.Application(middlewares=[_security_headers], client_max_size=64 * 1024)
        app.add_routes([web.get('/', self._index), web.get('/ws', self._websocket),
                        web.get('/api/state', self._state), web.get('/api/actions', self._actions),
                        web.post('/api/login', self._login), web.post('/api/logout', self._logout),
                        web.post('/api/action/{name}', self._action),
                        web.static('/static', self._static_dir)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound = self._runner.addresses[0][1]      # the port bound (port 0: the one the OS chose)
        ready.set_result(int(bound))
        pusher = asyncio.create_task(self._push_loop())
        await self._stopped.wait()
        pusher.cancel()
        for ws in list(self._clients):
            await ws.close()
        await self._runner.cleanup()

    async def _push_loop(self) -> None:
        assert self._changed is not None
        while True:
            await self._changed.wait()
            self._changed.clear()
            text = json.dumps({'type': 'state', 'state': self._current()})
            for ws in list(self._clients):
                if not ws.closed:
                    try:
                        await ws.send_str(text)
                    except (ConnectionError, RuntimeError):
                        pass                      # the browser went away; the close handler drops it
            await asyncio.sleep(self._push_period_s)

    def _current(self) -> dict[str, Any]:
        with self._lock:
            return self._snapshot

    # -- handlers ----------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self._static_dir / 'index.html')

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self._current())

    async def _actions(self, request: web.Request) -> web.Response:
        return web.json_response({'actions': [{'name': a.name, 'label': a.label} for a in ACTIONS.values()],
                                  'logins': self._sessions.enabled})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=10.0)
        await ws.prepare(request)
        self._clients.add(ws)
        await ws.send_str(json.dumps({'type': 'state', 'state': self._current()}))
        async for message in ws:             # the page only listens; anything it sends is ignored
            if message.type == WSMsgType.ERROR:
                break
        self._clients.discard(ws)
        return ws

    async def _login(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        user, password = body.get('user'), body.get('password')
        if not isinstance(user, str) or not isinstance(password, str):
            return _refuse(Refusal(400, 'login needs a JSON object with user and password strings'))
        result = await asyncio.to_thread(self._sessions.login, user, password)   # PBKDF2 takes ~0.1 s
        if isinstance(result, Refusal):
            return _refuse(result)
        token, session = result
        return web.json_response({'token': token, 'user': session.user, 'role': session.role})

    async def _logout(self, request: web.Request) -> web.Response:
        self._sessions.logout(_bearer(request))
        return web.json_response({'ok': True})

    async def _action(self, request: web.Request) -> web.Response:
        name = request.match_info['name']
        if name not in ACTIONS:
            return _refuse(Refusal(404, f'unknown action {name!r}; accepted: {", ".join(ACTIONS)}'))
        session = self._sessions.authorize(_bearer(request))
        if isinstance(session, Refusal):
            return _refuse(session)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(self._perform(name, session)), self._action_timeout_s)
        except asyncio.TimeoutError:
            result = ActionResult(False, f'no answer from the cell within {self._action_timeout_s:g} s')
        return web.json_response({'ok': result.ok, 'message': result.message, 'action': name, 'user': session.user},
                                 status=200 if result.ok else 409)


@web.middleware
async def _security_headers(request: web.Request, handler: Callable) -> web.StreamResponse:
    response = await handler(request)
    response.headers['Content-Security-Policy'] = CSP
    response.headers['X-Content-Type-Options'] = 'nosniff'
    response.headers['Cache-Control'] = 'no-store'
    return response


def _bearer(request: web.Request) -> str:
    header = request.headers.get('Authorization', '')
    return header[len('Bearer '):].strip() if header.startswith('Bearer ') else ''


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _refuse(Refusal(400, 'the request body is not JSON'))
    if not isinstance(body, dict):
        return _refuse(Refusal(400, 'the request body is not a JSON object'))
    return body


def _refuse(refusal: Refusal) -> web.Response:
    return web.json_response({'ok': False, 'message': refusal.reason}, status=refusal.status)
