"""Builds the aiohttp application: health, platform routes, console, lifecycle."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from enum import StrEnum
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestPayloadError

from bot.core.clock import Clock, utcnow
from bot.core.config import Config, ConfigError
from bot.deliverable_intake import IntakeWorker
from bot.hooks import Hooks
from bot.upload import UploadPage
from bot.runtime import Runtime
from handlers.router import Router
from schedules.registry import JobRegistry
from schedules.ticker import Ticker
from bot.storable import MAX_JSON_DEPTH, UNSTORABLE, json_depth, storable
from store.db import Database
from store.health import write_probe
from store.migrate import check_current

log = logging.getLogger(__name__)

RUNTIME_KEY = web.AppKey("runtime", Runtime)
# aiohttp bounds a request's head (it closes a connection that has not sent a whole
# head within the keep-alive timeout, which `serve` sets to IDLE_TIMEOUT_SECONDS) but
# not its body: a client trickling a body would hold a handler forever.
IDLE_TIMEOUT_SECONDS = 30.0
BODY_TIMEOUT_SECONDS = 30.0


@web.middleware
async def read_body_in_time(request: web.Request, handler: Any) -> web.StreamResponse:
    """Read every request body before its handler runs: within BODY_TIMEOUT_SECONDS and the size cap.
    A route that marks its handler `streams_body` (the upload link) reads its own, capped, to disk."""
    route = request.match_info.route
    if request.body_exists and not getattr(route.handler, "streams_body", False):
        cap = request.client_max_size
        if cap and request.content_length is not None and request.content_length > cap:
            raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=request.content_length)
        try:
            async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
                body = await request.read()  # kept by aiohttp: the handler's read()/json() get it from memory
        except TimeoutError:
            log.warning("%s %s: request body not received within %ss; answered 408, closing",
                        request.method, request.path, BODY_TIMEOUT_SECONDS)
            resp = web.json_response({"error": "request body not received in time"}, status=408)
            resp.force_close()
            return resp
        except (BadHttpMessage, RequestPayloadError) as exc:  # e.g. ContentEncodingError: "Content-Encoding: gzip" on a body that is not
            log.warning("%s %s: unreadable request body (%s); answered 400", request.method, request.path,
                        type(exc).__name__)
            resp = web.json_response({"error": "the request body cannot be decoded (Content-Encoding?)"}, status=400)
            resp.force_close()
            return resp
        # Deeply nested JSON would exhaust a recursive parser's stack (a 500): refused before any parses it.
        # (Counted on every body: a JSON body may start with whitespace; XML's CDATA brackets nest two deep.)
        if json_depth(body) > MAX_JSON_DEPTH:
            return web.json_response({"error": f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"},
                                     status=400)
    return await handler(request)


@web.middleware
async def refuse_unstorable_query(request: web.Request, handler: Any) -> web.StreamResponse:
    """NUL or a lone surrogate in the query or path would reach a database query and fail there (500)."""
    if not (storable(list(request.query.items())) and storable(dict(request.match_info))):
        return web.json_response({"error": f"the URL {UNSTORABLE}"}, status=400)
    return await handler(request)


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_console_exposure(config: Config) -> None:
    """Refuse to expose the console (which can act as anyone) without a token."""
    if config.console.enabled and not is_loopback(config.server.host) and not config.console.token:
        raise ConfigError(
            f"console.enabled is true and server.host is {config.server.host!r} (not loopback), "
            "but console.token is empty: set a token or bind to 127.0.0.1")


def make_runtime(config: Config, db: Database, clock: Clock | None = None, *, router: Router | None = None,
                 jobs: JobRegistry | None = None) -> Runtime:
    """A Runtime with the adapters its tenants need; `router` and `jobs` default to every built-in feature."""
    runtime = Runtime(config, db, clock, router=router, jobs=jobs)
    platforms = {t.platform for t in config.tenants}
    if config.console.enabled or "console" in platforms:
        from bot.console import ConsoleAdapter
        runtime.add_adapter(ConsoleAdapter(runtime))
    if "wecom" in platforms:
        from bot.wecom import WeComAdapter
        runtime.add_adapter(WeComAdapter(runtime))
    if "dingtalk" in platforms:
        from bot.dingtalk.adapter import DingTalkAdapter
        runtime.add_adapter(DingTalkAdapter(runtime))
    return runtime


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    db_ok = await runtime.db.ping()
    return web.json_response(
        {"status": "ok" if db_ok else "degraded", "database": "ok" if db_ok else "unreachable",
         "instance": runtime.instance, "adapters": sorted(runtime.adapters)},
        status=200 if db_ok else 503)


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: the schema is current, the database takes a write, adapters are up.

    /healthz stays a liveness probe (a read); a full or read-only database passes it but not this.
    """
    runtime = request.app[RUNTIME_KEY]
    problem = await check_current(runtime.db)
    writes = await write_probe(runtime.db, runtime.instance, utcnow()) if problem is None else None
    if writes is not None:
        await runtime.db.recover()  # fresh connections for the next probe and the dispatcher
    adapters = {name: a.healthy() for name, a in runtime.adapters.items()}
    ready = problem is None and writes is None and all(adapters.values())
    body: dict[str, object] = {"ready": ready, "schema": problem or "current", "writes": writes or "ok",
                               "adapters": adapters}
    notices = [n for a in runtime.adapters.values() for n in a.notices()]
    if notices:
        body["notices"] = notices
    return web.json_response(body, status=200 if ready else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    await runtime.metrics.refresh(runtime.db)
    return runtime.metrics.exposition()


class Role(StrEnum):
    """What one `dongxian serve` process does; the inbox and outbox in the database join them.

    all: everything in one process. web: platform callbacks, DingTalk Stream, the console —
    acknowledging only. worker: the dispatcher, the outbox relay and the scheduled jobs, with
    only /healthz, /readyz and /metrics over HTTP. One web and one worker on a 2-core machine
    keep acknowledgement and handling off each other's core (docs/deploy.md).
    """

    ALL = "all"
    WEB = "web"
    WORKER = "worker"


def build_app(runtime: Runtime, *, start_background: bool = True, role: Role = Role.ALL) -> web.Application:
    config = runtime.config
    middlewares = [read_body_in_time, refuse_unstorable_query]
    guard = None
    if config.console.enabled and role != Role.WORKER:  # no console in a worker: the web process serves it
        from bot.console import token_ok
        from bot.console_guard import ConsoleGuard, guard_middleware

        guard = ConsoleGuard(config)
        token = config.console.token
        # After the body cap and read timeout (every route answers those alike), before any handler.
        middlewares.insert(1, guard_middleware(guard, lambda r: bool(token) and token_ok(r, token)))
    app = web.Application(client_max_size=config.server.max_body_bytes, middlewares=middlewares)
    app[RUNTIME_KEY] = runtime
    if guard is not None:
        from bot.console_guard import GUARD_KEY
        app[GUARD_KEY] = guard
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    for name, adapter in runtime.adapters.items():
        if role == Role.WORKER:
            break
        if name == "console" and not config.console.enabled:
            continue  # console tenants can still receive messages, but its API stays closed
        adapter.add_routes(app)
    if role != Role.WORKER:
        Hooks(runtime).add_routes(app)  # /hooks/{tenant}/{source}: 404 unless [tenants.trace.hooks] names it
        UploadPage(runtime).add_routes(app)  # /upload/{token}: the task card's upload link
    if config.console.enabled and role != Role.WORKER:
        try:
            from bot.console_page import add_page_routes
        except ImportError:  # the browser page is optional; the JSON API is enough for tests
            pass
        else:
            add_page_routes(app, runtime)

    if start_background:
        async def _start(app: web.Application) -> None:
            await runtime.start(inbound=role != Role.WORKER, handle=role != Role.WEB)
            if role == Role.WEB:
                return  # the worker runs the jobs
            ticker = Ticker(runtime.jobs, runtime.job_env, runtime.config.tenants, runtime.clock, runtime.wake_outbox,
                            offset=runtime.offset)
            app["ticker"] = ticker
            ticker.start()
            app["deliverable_intake"] = intake = IntakeWorker(runtime)  # files sent in chat, read off the loop
            intake.start()

        async def _stop(app: web.Application) -> None:
            ticker = app.get("ticker")
            if ticker is not None:
                ticker.stop()
            intake = app.get("deliverable_intake")
            if intake is not None:
                await intake.stop()
            await runtime.stop()

        app.on_startup.append(_start)
        app.on_cleanup.append(_stop)
    return app
