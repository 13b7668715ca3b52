"""The HTML around every page: head (the package's own stylesheet and script, nothing
inline: the CSP allows only the package's assets), the header with who is signed in,
and the error page."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi.responses import HTMLResponse

from services.runtime.auth import Principal


def who(principal: Principal | None) -> dict[str, Any] | None:
    if principal is None:
        return None
    return {"role": principal.role.value, "scope": principal.scope, "name": principal.name}


def page(
    title: str,
    body: str,
    *,
    script: str | None = None,
    data: dict[str, Any] | None = None,
    principal: Principal | None = None,
    status_code: int = 200,
    styles: tuple[str, ...] = (),
    scripts: tuple[str, ...] = (),
) -> HTMLResponse:
    # the page's parameters travel as JSON in a data attribute: no string pasted into JS
    boot = html.escape(json.dumps({**(data or {}), "who": who(principal)}), quote=True)
    tags = [f'<link rel="stylesheet" href="/ui/static/{name}">' for name in ("app.css", *styles)]
    tags += [f'<script src="/ui/static/{name}" defer></script>' for name in scripts]
    if script:
        tags.append(f'<script src="/ui/static/{script}" defer></script>')
    signed = ""
    if principal is not None:
        signed = (
            f'<form class="signed" method="post" action="/ui/sign-out"><span>'
            f"{html.escape(principal.name)} ({html.escape(principal.role.value)}"
            f"{':' + html.escape(principal.scope) if principal.scope else ''})</span>"
            '<button type="submit">Sign out</button></form>'
        )
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · microhub</title>
{"".join(tags)}
</head><body data-boot="{boot}">
<header><a class="brand" href="/ui/">microhub</a><h1>{html.escape(title)}</h1>{signed}</header>
<main>{body}</main>
</body></html>""",
        status_code=status_code,
    )


def error_page(
    status_code: int, message: str, *, principal: Principal | None = None
) -> HTMLResponse:
    titles = {
        400: "Bad request",
        401: "Please sign in",
        403: "Not for this key",
        404: "Not found",
        422: "Cannot show this",
        503: "Not available",
    }
    title = titles.get(status_code, "Something went wrong")
    hint = (
        '<p><a href="/ui/">Sign in</a> with a key that may see this.</p>'
        if status_code in (401, 403)
        else '<p><a href="/ui/">Back to the start page</a></p>'
    )
    body = f"""<section class="error" role="alert"><p class="code">{status_code}</p>
<p class="message">{html.escape(message)}</p>{hint}</section>"""
    return page(title, body, principal=principal, status_code=status_code)
