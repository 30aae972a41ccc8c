"""Console pages: each route checks the session cookie and the person's membership, then renders a
page shell; the page's script reads and changes everything through the admin API with the
session's CSRF token (docs/console.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from siemgate import __version__
from siemgate.accounts.people import RANK
from siemgate.errors import Unauthorized
from siemgate.services import Services
from siemgate.store.base import Session, User

HERE = Path(__file__).parent
PREFIX = "/console"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Everything the console loads comes from this server; no inline scripts or styles, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DASHBOARDS = {"signins": "Sign-in attempts", "items": "Item usage", "audit": "Audit activity"}
MANAGER = "administrator"  # the lowest role that manages integrations and reads activity


@dataclass(frozen=True)
class Visitor:
    user: User
    session: Session
    accounts: list[dict[str, Any]]  # {"uuid", "name", "role"} of each membership


class _Static(StaticFiles):
    """The console's files, revalidated on every use (`no-cache`: a 304 when unchanged), so that the
    scripts a page imports are never older than the page after an upgrade."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_console(app: FastAPI) -> None:
    """Add the console's pages and its static files (scripts, styles, icons, Chart.js) to `app`.
    The static files come first: the pages end with a catch-all that answers unknown addresses."""
    app.mount(f"{PREFIX}/static", _Static(directory=HERE / "static"), name="console-static")
    app.include_router(router)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _visitor(request: Request) -> Visitor | None:
    """The signed-in person, or None (no cookie, or an expired or unknown session)."""
    services = _services(request)
    cookie = services.sessions.presented(request.url.scheme, request.cookies)
    if not cookie:
        return None
    try:
        user, session = services.sessions.authenticate(cookie)
    except Unauthorized:
        return None
    accounts = []
    for member in services.store.list_memberships(user.id):
        account = services.account(member.account_id)
        accounts.append({"uuid": account.uuid, "name": account.name, "role": member.role})
    accounts.sort(key=lambda a: a["name"].lower())
    return Visitor(user, session, accounts)


def _render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(
        request, template, {"version": __version__, "prefix": PREFIX, **context}, status_code=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{PREFIX}/sign-in?next={quote(target, safe='/')}", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


ACTIVITY = "see account activity"


def _page(
    request: Request,
    account_uuid: str,
    template: str,
    minimum: str = "member",
    status: int = 200,
    doing: str = ACTIVITY,
    **context: Any,
) -> Response:
    """Render an account page for a signed-in member whose role is at least `minimum`; a lower
    role gets a 403 page saying only owners and administrators can do `doing`."""
    visitor = _visitor(request)
    if visitor is None:
        return _to_sign_in(request)
    current = next((a for a in visitor.accounts if a["uuid"] == account_uuid), None)
    if current is None:
        return _render(
            request,
            "message.html",
            404,
            visitor=visitor,
            title="No such account",
            message="This account does not exist or you are not a member of it.",
        )
    base = {"visitor": visitor, "account": current, "manager": RANK[current["role"]] >= RANK[MANAGER]}
    if RANK[current["role"]] < RANK[minimum]:
        return _render(
            request,
            "message.html",
            403,
            **base,
            title="Not available for your role",
            message=f"Only owners and administrators can {doing}. Ask one of them for access.",
        )
    return _render(request, template, status, **base, **context)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _to_sign_in(request)
    if not visitor.accounts:
        return _render(
            request,
            "message.html",
            visitor=visitor,
            title="No accounts yet",
            message="You are not a member of any account yet. Ask an owner to invite you:"
            " invitations waiting for you show here.",
        )
    return RedirectResponse(f"{PREFIX}/accounts/{visitor.accounts[0]['uuid']}/integrations", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request, next: str = "") -> Response:
    target = next if next.startswith(f"{PREFIX}/") and not next.startswith("//") else f"{PREFIX}/"
    if _visitor(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _render(request, "sign_in.html", next=target)


@router.get("/join", response_class=HTMLResponse)
def join(request: Request) -> Response:
    """Someone new takes up an invitation with its code (docs/security.md)."""
    return _render(request, "join.html", visitor=_visitor(request))


@router.get("/security", response_class=HTMLResponse)
def security(request: Request) -> Response:
    """The signed-in person's password, two-factor sign-in and recovery codes."""
    visitor = _visitor(request)
    if visitor is None:
        return _to_sign_in(request)
    return _render(request, "security.html", visitor=visitor)


@router.get("/accounts/{account}/integrations", response_class=HTMLResponse)
def integrations(request: Request, account: str) -> Response:
    return _page(request, account, "integrations.html", section="integrations")


@router.get("/accounts/{account}/integrations/new", response_class=HTMLResponse)
def new_integration(request: Request, account: str, type: str = "other") -> Response:
    return _page(
        request,
        account,
        "integration_new.html",
        MANAGER,
        doing="add integrations",
        section="integrations",
        siem_type=type,
    )


@router.get("/accounts/{account}/integrations/{integration}", response_class=HTMLResponse)
def integration(request: Request, account: str, integration: str) -> Response:
    return _page(request, account, "integration.html", section="integrations", integration=integration)


@router.get("/accounts/{account}/events", response_class=HTMLResponse)
def explorer(request: Request, account: str) -> Response:
    return _page(request, account, "events.html", MANAGER, section="events")


@router.get("/accounts/{account}/dashboards/{board}", response_class=HTMLResponse)
def dashboard(request: Request, account: str, board: str) -> Response:
    if board not in DASHBOARDS:
        return _page(
            request,
            account,
            "message.html",
            status=404,
            title="No such dashboard",
            message=f"There is no dashboard {board!r}; there are {', '.join(DASHBOARDS)}.",
        )
    return _page(
        request,
        account,
        f"dashboard_{board}.html",
        MANAGER,
        section=f"dashboard-{board}",
        board=board,
        board_title=DASHBOARDS[board],
    )


@router.get("/accounts/{account}/members", response_class=HTMLResponse)
def members(request: Request, account: str) -> Response:
    return _page(request, account, "members.html", section="members")


@router.get("/accounts/{account}/alerts", response_class=HTMLResponse)
def alerts(request: Request, account: str) -> Response:
    return _page(request, account, "alerts.html", section="alerts")  # members may read alerts (docs/alerts.md)


@router.post("/needs-script", response_class=HTMLResponse)
def needs_script(request: Request) -> Response:
    """Where every console form is sent when the page's script is not running (turned off, blocked,
    or not loaded yet): its script sends forms through the admin API and never lets them submit.
    Without it a form would go by GET to the page's address, a password or token name in the URL
    (browser history, a proxy's access log). The body is not read; nothing is changed."""
    return _render(
        request,
        "message.html",
        400,
        visitor=_visitor(request),
        title="The console needs JavaScript",
        message="Nothing was changed: the console sends its forms with its script, which is turned off, was"
        " blocked or had not loaded yet. Turn JavaScript on for this site (or wait for the page to load) and"
        " try again.",
    )


@router.get("/{rest:path}", response_class=HTMLResponse)
def not_found(request: Request, rest: str) -> Response:
    """Any other console address: a page saying so (404), with the navigation when signed in."""
    return _render(
        request,
        "message.html",
        404,
        visitor=_visitor(request),
        title="Page not found",
        message=f"There is no console page at /console/{rest}. Check the address, or start again from the console.",
    )
