"""The operator dashboard at `/`: server-rendered pages over the service layer, a session cookie after an
API-key login, CSRF tokens on every form, and operate-only actions refused server-side as well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import plotly
from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from service.auth import service as auth_service
from service.dashboard import session as sessions
from service.dashboard import text, views
from service.dashboard.session import User
from service.decisions import service as decisions
from service.deps import SessionDep, SettingsDep
from service.errors import DatabaseUnavailable, ForesightError, NotFound, Unauthenticated
from service.ops.jsonguard import json_problem
from service.power import service as power_service
from service.power.schemas import OversubscriptionQuery
from service.replays import service as replays
from service.replays.schemas import ReplayRequest

HERE = Path(__file__).parent
STATIC = {
    "app.css": (HERE / "static" / "app.css", "text/css"),
    "app.js": (HERE / "static" / "app.js", "text/javascript"),
    "plotly.min.js": (Path(plotly.__file__).parent / "package_data" / "plotly.min.js", "text/javascript"),
}
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.finalize = text.finalize
templates.env.filters["who"] = text.who
router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form(alias=sessions.CSRF_FIELD)]


def _page(request: Request, name: str, user: User | None, status: int = 200, **context: Any) -> HTMLResponse:
    context.update(user=user, csrf_field=sessions.CSRF_FIELD, error=request.query_params.get("error"),
                   notice=request.query_params.get("notice"))  # fmt: skip
    return templates.TemplateResponse(request, name, context, status_code=status)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _back(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(params)}" if params else path, status_code=303)


def _refused(request: Request, user: User | None, why: str) -> HTMLResponse:
    return _page(request, "error.html", user, status=403, message=why)


class PageAnswer(Exception):
    """Raised by a page dependency to answer at once: the login redirect, or the 403 page."""

    def __init__(self, response: Response) -> None:
        super().__init__("page answered early")
        self.response = response


async def answer_early(_: Request, raised: Exception) -> Response:
    """The app's handler for `PageAnswer` (registered in `service.app`)."""
    assert isinstance(raised, PageAnswer)
    return raised.response


def viewer(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """The logged-in user of a page; without a session, straight to the login page."""
    user = sessions.current_user(request, session, settings)
    if user is None:
        raise PageAnswer(_to_login())
    return user


def operator(request: Request, session: SessionDep, settings: SettingsDep, token: Csrf = "") -> User:
    """The user behind a form that changes something: logged in, the form's CSRF token right, and the
    'operate' scope; otherwise the 403 page says which of them failed."""
    user = sessions.current_user(request, session, settings)
    if user is None:
        raise PageAnswer(_refused(request, None, "log in first"))
    if not sessions.csrf_ok(user, token):
        raise PageAnswer(
            _refused(request, user, "the form's CSRF token is missing or wrong; reload the page")
        )
    if not user.can_operate:
        raise PageAnswer(_refused(request, user, "your API key lacks the 'operate' scope"))
    return user


Viewer = Annotated[User, Depends(viewer)]
Operator = Annotated[User, Depends(operator)]


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    path, media_type = STATIC[name]
    return FileResponse(path, media_type=media_type)


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon (pages declare an empty one; the replay report does not, and browsers ask)."""
    return Response(status_code=204)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    token = sessions.login_token(request)
    response = _page(request, "login.html", None, login_csrf=token)
    sessions.set_login_token(response, request, token)
    return response


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form()],
    token: Csrf = "",
) -> Response:
    if not sessions.login_token_ok(request, token):
        return _refused(request, None, "the login form expired (CSRF token missing or wrong); reload it")
    try:
        principal = auth_service.authenticate(session, api_key.strip())
    except Unauthenticated as error:
        retry = sessions.login_token(request)
        response = _page(request, "login.html", None, status=401, login_csrf=retry, message=error.message)
        sessions.set_login_token(response, request, retry)
        return response
    home = RedirectResponse("/", status_code=303)
    sessions.set_session(home, request, settings, principal.key_id)
    return home


@router.post("/logout", response_model=None)
def logout(request: Request, session: SessionDep, settings: SettingsDep, token: Csrf = "") -> Response:
    user = sessions.current_user(request, session, settings)
    if user is not None and not sessions.csrf_ok(user, token):
        return _refused(request, user, "the form's CSRF token is missing or wrong; reload the page")
    if user is not None:
        sessions.revoke_sessions(session, user.principal.key_id)
    response = _to_login()
    sessions.clear_session(response)
    return response


@router.get("/", response_model=None)
def overview(request: Request, session: SessionDep, user: Viewer) -> Response:
    return _page(request, "overview.html", user, **views.overview(session))


@router.get("/workloads/{cluster}/{name:path}", response_model=None)
def workload(request: Request, session: SessionDep, user: Viewer, cluster: str, name: str) -> Response:
    try:
        context = views.workload(session, cluster, name)
    except NotFound as error:
        return _page(request, "error.html", user, status=404, message=error.message)
    return _page(request, "workload.html", user, **context)


@router.get("/power", response_model=None)
def power(request: Request, session: SessionDep, user: Viewer) -> Response:
    return _page(request, "power.html", user, **views.power(session))


@router.post("/power/oversubscription", response_model=None)
def ask_oversubscription(
    request: Request,
    session: SessionDep,
    user: Operator,
    domain: Annotated[str, Form()] = "",
    cluster: Annotated[str, Form()] = "",
    profile: Annotated[str, Form()] = "a100",
    gpus: Annotated[int, Form()] = 8,
    priority: Annotated[int, Form()] = 0,
) -> Response:
    try:
        query = OversubscriptionQuery(
            domain=domain, cluster=cluster or None, profile=profile, gpus=gpus, priority=priority
        )
        answer = power_service.oversubscription(session, query, user.actor)
    except ValidationError as error:
        return _back("/power", error=f"invalid question: {error}")
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        return _back("/power", error=error.message)
    extra = answer.params.get("extra_servers")
    return _back("/power", notice=f"{domain}: {extra} more {profile} servers fit (decision {answer.id})")


@router.get("/nodes", response_model=None)
def nodes(request: Request, session: SessionDep, user: Viewer) -> Response:
    return _page(request, "nodes.html", user, **views.nodes_page(session))


@router.get("/decisions", response_model=None)
def decisions_page(
    request: Request,
    session: SessionDep,
    user: Viewer,
    kind: str = "",
    status: str = "",
    target: str = "",
    actor: str = "",
) -> Response:
    filters = {
        "kind": kind or None,
        "status": status or None,
        "target": target or None,
        "actor": actor or None,
    }
    return _page(request, "decisions.html", user, **views.decisions_page(session, filters))


@router.post("/decisions/{decision_id}/{verdict}", response_model=None)
def decide(
    request: Request,
    session: SessionDep,
    user: Operator,
    decision_id: int,
    verdict: str,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    status = {"approve": "approved", "reject": "rejected"}.get(verdict)
    if status is None:
        return _page(request, "error.html", user, status=404, message=f"no action {verdict!r}")
    try:
        decisions.verdict(session, decision_id, status, user.actor, note or None)
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        return _back("/decisions", error=error.message)
    return _back("/decisions", notice=f"decision {decision_id} {status} by {user.principal.name}")


@router.get("/replays", response_model=None)
def replays_page(request: Request, session: SessionDep, user: Viewer) -> Response:
    runs = replays.page(session, 50, 0)
    return _page(request, "replays.html", user, runs=runs.items, traces=replays.traces())


@router.post("/replays", response_model=None)
def start_replay(
    request: Request,
    session: SessionDep,
    user: Operator,
    tasks: BackgroundTasks,
    trace: Annotated[str, Form()] = "",
    policies: Annotated[str, Form()] = "hpa",
    seeds: Annotated[int, Form(ge=1, le=20)] = 1,
    config: Annotated[str, Form()] = "{}",
    trace_format: Annotated[str, Form()] = "long",
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    names = [p.strip() for p in policies.split(",") if p.strip()]
    body: dict[str, Any] = {"policy": names[0]} if len(names) == 1 else {"policies": names, "seeds": seeds}
    if problem := json_problem(config.encode()):
        return _back("/replays", error=f"invalid replay config: {problem}")
    try:
        body["config"] = json.loads(config or "{}")
        if upload is not None and upload.filename:
            body.update(trace_csv=upload.file.read().decode(), trace_format=trace_format)
        else:
            body["trace"] = trace
        request_body = ReplayRequest.model_validate(body)
    except (ValueError, ValidationError) as error:
        return _back("/replays", error=f"invalid replay request: {error}")
    try:
        answer, job = replays.start(session, request.app.state.database, request_body, user.actor)
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        return _back("/replays", error=error.message)
    tasks.add_task(job)  # after the response, so after the row is committed
    return RedirectResponse(f"/replays/{answer.id}", status_code=303)


@router.get("/replays/{run_id}", response_model=None)
def replay(request: Request, session: SessionDep, user: Viewer, run_id: int) -> Response:
    try:
        run = replays.get(session, run_id)
    except NotFound as error:
        return _page(request, "error.html", user, status=404, message=error.message)
    return _page(request, "replay.html", user, run=run, **views.replay_view(run))


@router.get("/replays/{run_id}/report", response_model=None)
def replay_report(request: Request, session: SessionDep, user: Viewer, run_id: int) -> Response:
    try:
        report = replays.artifact(session, run_id, "report").decode()
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        return _page(request, "error.html", user, status=error.status_code, message=error.message)
    return HTMLResponse(_with_back_link(report, run_id))


def _with_back_link(report: str, run_id: int) -> str:
    """The offline report with a link back to its replay page (and the list) at the top."""
    back = (
        f'<nav style="font:14px sans-serif;margin:8px 0"><a href="/replays/{run_id}">&larr; back to '
        f'replay #{run_id}</a> · <a href="/replays">all replays</a> · <a href="/savings">savings</a></nav>'
    )
    head, marker, rest = report.partition("<body")
    if not marker:
        return back + report
    tag_end = rest.find(">") + 1
    return head + marker + rest[:tag_end] + back + rest[tag_end:]


@router.get("/savings", response_model=None)
def savings(request: Request, session: SessionDep, user: Viewer) -> Response:
    return _page(request, "savings.html", user, **views.savings_page(session))


@router.post("/savings", response_model=None)
def start_savings(
    request: Request,
    session: SessionDep,
    user: Operator,
    tasks: BackgroundTasks,
    workload: Annotated[str, Form()] = "",
    hours: Annotated[str, Form()] = "",
    seeds: Annotated[int, Form(ge=1, le=5)] = 1,
) -> Response:
    """What would Foresight have saved on this workload's own telemetry? (a savings replay)"""
    cluster, _, name = workload.partition("/")
    source: dict[str, Any] = {"workload": name, "cluster": cluster or None}
    try:
        if hours.strip():
            source["hours"] = float(hours)
        body = ReplayRequest.model_validate({"source": source, "seeds": seeds})
        answer, job = replays.start(session, request.app.state.database, body, user.actor)
    except (ValueError, ValidationError) as error:
        return _back("/savings", error=f"invalid request: {error}")
    except DatabaseUnavailable:
        raise
    except ForesightError as error:
        return _back("/savings", error=error.message)
    tasks.add_task(job)
    return RedirectResponse(f"/replays/{answer.id}", status_code=303)
