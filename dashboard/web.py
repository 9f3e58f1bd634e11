"""The dashboard's routes, mounted at /dashboard on the MCP HTTP app.

The page is static (HTML, JS, plotly.js from the installed plotly package: machines
at a site are often offline, so no CDN) and polls `api/data`. When the site file
lists tokens, `api/data` wants one in the Authorization header, as /mcp does; the
page keeps it in sessionStorage after its login form, never in a URL, where it
would land in logs and browser history.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from dashboard.data import Dashboard
from guardrails.principals import Caller, caller_for_token
from tools.context import Runtime

PREFIX = "/dashboard"
STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Anonymous readers, when the site file lists no tokens at all.
ANONYMOUS = Caller(name="dashboard", role="viewer")
# plotly.js sets inline styles on the elements it draws, so styles need 'unsafe-inline'.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _file(path: Path, media_type: str) -> Response:
    return FileResponse(path, media_type=media_type, headers=HEADERS)


def caller_of(request: Request, rt: Runtime) -> Caller | None:
    """The reader: the principal of the bearer token, or anonymous on a site without
    tokens; None when a token is needed and missing or unknown."""
    if not any(p.token_sha256 for p in rt.site.principals):
        return ANONYMOUS
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return caller_for_token(rt.site, token.strip())


def dashboard_app(rt: Runtime, allowed_hosts: list[str]) -> Starlette:
    board = Dashboard(rt)

    def data(request: Request) -> Response:
        # A plain function: Starlette runs it in a worker thread, so the forecast and
        # store queries never block the event loop that also serves /mcp.
        caller = caller_of(request, rt)
        if caller is None:
            return JSONResponse(
                {"error": "a bearer token from the site file is needed (any role reads)"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="gridpilot dashboard"', **HEADERS},
            )
        body = board.collect(caller).model_dump_json()
        return Response(
            body, media_type="application/json", headers={"Cache-Control": "no-store", **HEADERS}
        )

    routes = [
        Route("/", lambda _r: _file(STATIC / "index.html", "text/html")),
        Route("/dashboard.js", lambda _r: _file(STATIC / "dashboard.js", "text/javascript")),
        Route("/dashboard.css", lambda _r: _file(STATIC / "dashboard.css", "text/css")),
        Route("/plotly.min.js", lambda _r: _file(PLOTLY_JS, "text/javascript")),
        Route("/api/data", data),
    ]
    # DNS rebinding: a page on another name must not read the site through a browser.
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)]
    return Starlette(routes=routes, middleware=middleware)


def mount(app: Starlette, rt: Runtime, allowed_hosts: list[str]) -> None:
    """The `gridpilot.web` entry point: put the dashboard on the MCP HTTP app."""
    app.router.routes.append(Mount(PREFIX, app=dashboard_app(rt, allowed_hosts)))
    app.router.routes.append(Route("/", lambda _r: RedirectResponse(f"{PREFIX}/")))
