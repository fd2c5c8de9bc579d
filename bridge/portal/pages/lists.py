"""Distribution lists: a customer's lists, their members, adding, removing and CSV import.

The same functions and checks as `mailsms list …`: a list name as the tenants file
allows it, members read by the list CSV parser (`bridge.provision.file`), so one member
typed into the form and a file's rows are validated alike; national numbers are read
with the customer's `default_country`. A CSV import adds the good rows and lists each bad
line (with "replace", a file with a bad line changes nothing: removing every member not in
it would also remove the numbers on the bad lines).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from typing import Final

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.errors import InputError
from bridge.intake.addresses import normalise_msisdn
from bridge.lists.store import create_list, put_members, remove_members
from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.queries_lists import (
    ListView,
    customer_settings,
    list_of,
    lists_of,
    members_page,
)
from bridge.portal.viewer import Viewer
from bridge.provision.file import LIST_NAME, TenantsError, read_members_csv
from bridge.tenants.policy import resolve

PATH: Final = f"{PREFIX}/lists"
MAX_PAGE: Final = 100_000  # a larger page number is a typo (and an offset SQL refuses)
PAGE_SIZE: Final = 100
MAX_CSV_BYTES: Final = 20 * 1024 * 1024  # ~400,000 members
MAX_PROBLEMS_SHOWN: Final = 100
_LIST_NAME: Final = re.compile(LIST_NAME)
_FIELD_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

DONE: Final = {
    "created": N_("The list was created."),
    "added": N_("The member was added (or, if the number was on the list already, updated)."),
    "removed": N_("The member was removed."),
}


def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def country(customer_id: int) -> str:
        own = await pages.store.call(customer_settings, customer_id)
        return resolve(pages.defaults, own).default_country

    async def the_list(request: Request, viewer: Viewer) -> tuple[Scope, ListView]:
        scope = await pages.scope(request, viewer)
        list_id: int = request.path_params["id"]
        lst = (
            await pages.store.call(list_of, list_id, scope.customer_id)
            if list_id < 2**63
            else None  # not a database integer
        )
        if lst is None or not viewer.may_see(lst.customer_id):
            raise NotFound(_("There is no such distribution list."))
        return scope, lst

    async def index(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        lists = await pages.store.call(lists_of, scope.customer_id)
        done = DONE.get(request.query_params.get("done", ""), "")
        return pages.render(
            request,
            viewer,
            "lists.html",
            {"scope": scope, "lists": lists, "notice": _(done) if done else ""},
        )

    async def create(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        if scope.customer is None:
            raise InputError(_("Choose a customer first (the customer chooser above the form)."))
        form = await pages.form(request)
        name = _text(form, "name", 100).lower()
        if not _LIST_NAME.fullmatch(name):
            raise InputError(
                _(
                    "A list name starts with a letter and has only lower-case letters, digits, "
                    "dots, dashes and underscores (at most 64); mail to NAME@DOMAIN goes "
                    "to the list."
                )
            )
        fields = [f.strip().lower() for f in _text(form, "fields").split(",") if f.strip()]
        bad = [f for f in fields if not _FIELD_NAME.fullmatch(f)]
        if bad:
            raise InputError(
                _(
                    "Field names start with a letter and have only lower-case letters, digits "
                    "and underscores, separated by commas (e.g. city, team)."
                )
            )
        description = _text(form, "description")
        list_id = await pages.store.call(
            create_list, scope.customer, name, fields, description
        )  # ListError (an InputError): the name is taken
        return pages.redirect(f"{PATH}/{list_id}" + scope.query_string(done="created"))

    async def show(request: Request, viewer: Viewer) -> Response:
        scope, lst = await the_list(request, viewer)
        return await _members(request, viewer, scope, lst)

    async def _members(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        lst: ListView,
        *,
        result: dict[str, object] | None = None,
        status: int = 200,
    ) -> Response:
        search = request.query_params.get("q", "").strip()[:64]
        try:
            page = min(max(1, int(request.query_params.get("page", "1"))), MAX_PAGE)
        except ValueError:
            page = 1
        found = await pages.store.call(members_page, lst, search, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        here = f"{PATH}/{lst.id}"
        extra = {"q": search} if search else {}
        prev_url = here + scope.query_string(page=str(page - 1), **extra) if page > 1 else None
        more = page * PAGE_SIZE < found.total
        next_url = here + scope.query_string(page=str(page + 1), **extra) if more else None
        done = DONE.get(request.query_params.get("done", ""), "")
        return pages.render(
            request,
            viewer,
            "lists_members.html",
            {
                "scope": scope,
                "lst": lst,
                "members": found.rows,
                "total": found.total,
                "search": search,
                "prev_url": prev_url,
                "next_url": next_url,
                "here": here + scope.query_string(),
                "notice": _(done) if done else "",
                "result": result,
            },
            status=status,
        )

    async def add_member(request: Request, viewer: Viewer) -> Response:
        scope, lst = await the_list(request, viewer)
        form = await pages.form(request)
        # One CSV row through the list CSV parser: the form and a file are checked alike.
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["msisdn", "first_name", "last_name", *lst.fields])
        writer.writerow(
            [
                _text(form, "msisdn", 40),
                _text(form, "first_name", 100),
                _text(form, "last_name", 100),
                *(_text(form, f"field_{f}") for f in lst.fields),
            ]
        )
        members, problems = read_members_csv(out.getvalue(), await country(lst.customer_id))
        if problems or not members:
            raise InputError(
                _(
                    "That is not a mobile number. Write it internationally (e.g. +491701234567) "
                    "or nationally for the customer's country."
                )
            )
        await pages.store.call(put_members, lst.id, members)
        return pages.redirect(f"{PATH}/{lst.id}" + scope.query_string(done="added"))

    async def remove_member(request: Request, viewer: Viewer) -> Response:
        scope, lst = await the_list(request, viewer)
        form = await pages.form(request)
        given = _text(form, "msisdn", 40)
        msisdn = normalise_msisdn(given, await country(lst.customer_id)) or given
        removed = await pages.store.call(remove_members, lst.id, [msisdn]) if msisdn else 0
        if not removed:
            raise NotFound(_("That number is not a member of this list."))
        return pages.redirect(f"{PATH}/{lst.id}" + scope.query_string(done="removed"))

    async def import_csv(request: Request, viewer: Viewer) -> Response:
        scope, lst = await the_list(request, viewer)
        form = await pages.form(request)
        upload = form.get("file")
        replace = form.get("replace") == "yes"
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InputError(_("Choose a CSV file to import."))
        data = await upload.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise InputError(
                _("The file is larger than %(mb)d MB; split it and import the parts.")
                % {"mb": MAX_CSV_BYTES // (1024 * 1024)}
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                _('The file is not UTF-8 text; save it as "CSV UTF-8" and import it again.')
            ) from None
        try:
            name = upload.filename[:100]
            members, problems = await asyncio.to_thread(  # 100,000 rows: seconds of parsing
                read_members_csv, text, await country(lst.customer_id), name
            )
        except TenantsError as exc:  # no number column, or not CSV at all
            raise InputError(
                _(
                    "The file cannot be read: %(problem)s. The first row names the columns: "
                    "msisdn (or number, mobile, phone), first_name, last_name, and any "
                    "custom fields."
                )
                % {"problem": "; ".join(exc.problems)}
            ) from None
        counts = (0, 0, 0)
        if members and not (replace and problems):
            counts = await pages.store.call(put_members, lst.id, members, replace=replace)
        if not problems and not members:
            raise InputError(_("The file has no members: only the header row, or nothing."))
        result: dict[str, object] = {
            "imported": bool(members) and not (replace and problems),
            "refused_replace": replace and bool(problems),
            "added": counts[0],
            "updated": counts[1],
            "removed": counts[2],
            "problems": problems[:MAX_PROBLEMS_SHOWN],
            "more": max(0, len(problems) - MAX_PROBLEMS_SHOWN),
        }
        fresh: ListView | None = await pages.store.call(list_of, lst.id, lst.customer_id)
        status = 200 if result["imported"] else 400
        return await _members(request, viewer, scope, fresh or lst, result=result, status=status)

    return [
        Route(PATH, pages.page(index), methods=["GET"]),
        Route(PATH, pages.page(create), methods=["POST"]),
        Route(f"{PATH}/{{id:int}}", pages.page(show), methods=["GET"]),
        Route(f"{PATH}/{{id:int}}/members", pages.page(add_member), methods=["POST"]),
        Route(f"{PATH}/{{id:int}}/remove", pages.page(remove_member), methods=["POST"]),
        Route(f"{PATH}/{{id:int}}/import", pages.page(import_csv), methods=["POST"]),
        # the address bar after an import: a reload or a bookmark shows the list
        Route(f"{PATH}/{{id:int}}/import", pages.page(show), methods=["GET"]),
    ]
