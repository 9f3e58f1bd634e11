"""Who may read the dashboard's data: a token's principal, or anyone on a site
without tokens; the page only reads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from starlette.requests import Request

from dashboard.web import ANONYMOUS, caller_of, dashboard_app
from grid.config import load_site

EXAMPLE = Path(__file__).parents[2] / "examples" / "site.toml"


def request(authorization: str | None = None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/api/data", "headers": headers})


def test_a_site_with_tokens_needs_a_valid_bearer_token() -> None:
    rt = SimpleNamespace(site=load_site(EXAMPLE))
    assert caller_of(request(), rt) is None
    assert caller_of(request("Bearer nope"), rt) is None
    assert caller_of(request("Basic demo-viewer-token"), rt) is None
    viewer = caller_of(request("Bearer demo-viewer-token"), rt)
    assert viewer is not None and (viewer.name, viewer.role) == ("viewer", "viewer")
    admin = caller_of(request("bearer demo-admin-token"), rt)
    assert admin is not None and admin.role == "admin"


def test_a_site_without_tokens_is_read_anonymously_as_a_viewer() -> None:
    site = load_site(EXAMPLE)
    open_site = site.model_copy(
        update={
            "principals": [p.model_copy(update={"token_sha256": None}) for p in site.principals]
        }
    )
    assert caller_of(request(), SimpleNamespace(site=open_site)) == ANONYMOUS
    assert ANONYMOUS.role == "viewer"


def test_every_route_only_reads() -> None:
    app = dashboard_app(SimpleNamespace(site=load_site(EXAMPLE)), ["127.0.0.1"])
    for route in app.routes:
        assert route.methods <= {"GET", "HEAD"}, route.path
