"""A local stand-in for the parts of Google Docs v1, Drive v3 and OAuth that the gdoc sink uses.

Google cannot be reached from tests, so this aiohttp server answers the real client library
(google-api-python-client over httplib2, google-auth for tokens) on 127.0.0.1:

* ``POST /token``: the OAuth token endpoint (the ``token_uri`` of the credentials it writes):
  the JWT-bearer grant of a service account (the assertion's signature is checked against the key
  it issued, its ``sub`` is the delegated user) and the ``refresh_token`` grant of a user token.
* Docs: ``documents.create``, ``documents.get`` and ``documents.batchUpdate`` with ``insertText``
  (``location`` or ``endOfSegmentLocation``), ``updateTextStyle``, ``updateParagraphStyle``,
  ``createNamedRange``, ``deleteNamedRange`` and ``writeControl.requiredRevisionId``. A batch is
  atomic, as in the real API: one bad request and nothing is applied (400).
* Drive: ``permissions.create``, ``files.get`` and ``files.update`` (``addParents``/``removeParents``).

Indexes are UTF-16 code units as in the real API; inserted text takes the text style of the
character before it and the paragraph style of the paragraph it lands in, as Docs does, so a sink
that does not reset styles shows it. Named ranges move with insertions and vanish when their text
is deleted.

Switches for tests: ``fail`` (answer 429/5xx to the next calls, with ``Retry-After``, before or
after applying a write), ``write_quota_per_min`` (enforce the per-user write quota with 429s),
``type_paragraph``/``type_at_end``/``delete_paragraph`` (a person editing the document), and
``on_write`` (called after a write is applied and before it is answered: a test kills the sink
there). Every request is logged (``requests``), and every applied write with its time (``writes``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import itertools
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
WRITE_METHODS = frozenset({"documents.create", "documents.batchUpdate"})


def units(text: str) -> str:
    """``text`` with each character outside the BMP as its two UTF-16 surrogates (one index each)."""
    out = []
    for c in text:
        o = ord(c)
        if o < 0x10000:
            out.append(c)
        else:
            o -= 0x10000
            out.append(chr(0xD800 + (o >> 10)) + chr(0xDC00 + (o & 0x3FF)))
    return "".join(out)


def from_units(text: str) -> str:
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(
        self, code: int, message: str, status: str = "INVALID_ARGUMENT", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.headers = code, message, status, headers


@dataclass
class NamedRange:
    id: str
    name: str
    start: int
    end: int


@dataclass
class FakeDocument:
    """A document's body as UTF-16 code units from index 1; index 0 is the section break."""

    id: str
    title: str
    text: str = "\n"
    styles: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    para: list[str] = field(default_factory=lambda: ["NORMAL_TEXT"])
    ranges: list[NamedRange] = field(default_factory=list)
    revision: int = 1
    parents: list[str] = field(default_factory=lambda: ["root"])
    permissions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end_index(self) -> int:
        return len(self.text) + 1

    def paragraph_bounds(self) -> list[tuple[int, int]]:
        """(start, end) indexes of each paragraph, its newline included."""
        out, start = [], 1
        for i, c in enumerate(self.text):
            if c == "\n":
                out.append((start, i + 2))
                start = i + 2
        return out

    def insert(self, index: int, text: str) -> None:
        if not text:
            raise ApiError(400, "insertText: the text must not be empty")
        if not 1 <= index < self.end_index:
            raise ApiError(
                400, f"Index {index} must be less than the end index of the referenced segment, {self.end_index}."
            )
        pos = index - 1
        u = units(text)
        at_para_start = pos == 0 or self.text[pos - 1] == "\n"
        base = self.styles[pos] if at_para_start else self.styles[pos - 1]
        if at_para_start and self.text[pos] == "\n":
            base = {}
        para = self.para[pos]
        self.text = self.text[:pos] + u + self.text[pos:]
        self.styles[pos:pos] = [dict(base) for _ in u]
        self.para[pos:pos] = [para for _ in u]
        n = len(u)
        for r in self.ranges:
            if r.start >= index:
                r.start += n
            if r.end > index:
                r.end += n

    def delete(self, start: int, end: int) -> None:
        if not 1 <= start < end <= len(self.text):
            raise ApiError(400, f"deleteContentRange: bad range {start}-{end}")
        a, b = start - 1, end - 1
        self.text = self.text[:a] + self.text[b:]
        del self.styles[a:b]
        del self.para[a:b]
        n = end - start
        kept = []
        for r in self.ranges:
            s = r.start if r.start < start else max(start, r.start - n)
            e = r.end if r.end <= start else max(start, r.end - n)
            if e > s:
                r.start, r.end = s, e
                kept.append(r)
        self.ranges = kept

    def _check_range(self, rng: dict[str, Any], what: str) -> tuple[int, int]:
        try:
            start, end = int(rng["startIndex"]), int(rng["endIndex"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, f"{what}: range needs startIndex and endIndex") from None
        if not 1 <= start < end <= self.end_index:
            raise ApiError(400, f"{what}: range {start}-{end} is outside the body (end index {self.end_index})")
        return start, min(end, len(self.text) + 1)

    def apply(self, req: dict[str, Any], ids: Any) -> dict[str, Any]:
        if len(req) != 1:
            raise ApiError(400, "each request must set exactly one kind")
        kind, body = next(iter(req.items()))
        if kind == "insertText":
            if "endOfSegmentLocation" in body:
                index = self.end_index - 1
            else:
                index = int(body.get("location", {}).get("index", -1))
            self.insert(index, str(body.get("text", "")))
            return {}
        if kind == "updateTextStyle":
            start, end = self._check_range(body.get("range", {}), kind)
            fields = _fields(body, kind)
            style = body.get("textStyle", {})
            for i in range(start - 1, end - 1):
                _set_fields(self.styles[i], style, fields)
            return {}
        if kind == "updateParagraphStyle":
            start, end = self._check_range(body.get("range", {}), kind)
            fields = _fields(body, kind)
            named = body.get("paragraphStyle", {}).get("namedStyleType")
            if fields != ["namedStyleType"] and fields != ["*"]:
                raise ApiError(400, "this server supports paragraphStyle field namedStyleType only")
            for a, b in self.paragraph_bounds():
                if a < end and b > start:
                    for i in range(a - 1, b - 1):
                        self.para[i] = named or "NORMAL_TEXT"
            return {}
        if kind == "createNamedRange":
            name = str(body.get("name", ""))
            if not 1 <= len(name) <= 256:
                raise ApiError(400, "createNamedRange: the name must have 1 to 256 characters")
            start, end = self._check_range(body.get("range", {}), kind)
            rid = f"kix.{next(ids)}"
            self.ranges.append(NamedRange(rid, name, start, end))
            return {"createNamedRange": {"namedRangeId": rid}}
        if kind == "deleteNamedRange":
            if "name" in body:
                keep = [r for r in self.ranges if r.name != body["name"]]
            else:
                keep = [r for r in self.ranges if r.id != body.get("namedRangeId")]
            if len(keep) == len(self.ranges):
                raise ApiError(400, "deleteNamedRange: no named range matches")
            self.ranges = keep
            return {}
        if kind == "deleteContentRange":
            start, end = self._check_range(body.get("range", {}), kind)
            self.delete(start, end)
            return {}
        raise ApiError(400, f"unsupported request {kind}")

    def to_json(self) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"endIndex": 1, "sectionBreak": {"sectionStyle": {}}}]
        for a, b in self.paragraph_bounds():
            elements = []
            run_start = a
            for i in range(a, b + 1):
                if i == b or (i > run_start and self.styles[i - 1] != self.styles[run_start - 1]):
                    elements.append(
                        {
                            "startIndex": run_start,
                            "endIndex": i,
                            "textRun": {
                                "content": from_units(self.text[run_start - 1 : i - 1]),
                                "textStyle": copy.deepcopy(self.styles[run_start - 1]),
                            },
                        }
                    )
                    run_start = i
            content.append(
                {
                    "startIndex": a,
                    "endIndex": b,
                    "paragraph": {"elements": elements, "paragraphStyle": {"namedStyleType": self.para[a - 1]}},
                }
            )
        named: dict[str, Any] = {}
        for r in self.ranges:
            entry = named.setdefault(r.name, {"name": r.name, "namedRanges": []})
            entry["namedRanges"].append(
                {"namedRangeId": r.id, "name": r.name, "ranges": [{"startIndex": r.start, "endIndex": r.end}]}
            )
        return {
            "documentId": self.id,
            "title": self.title,
            "revisionId": f"rev-{self.revision}",
            "body": {"content": content},
            "namedRanges": named,
        }


def _fields(body: dict[str, Any], what: str) -> list[str]:
    fields = [f.strip() for f in str(body.get("fields", "")).split(",") if f.strip()]
    if not fields:
        raise ApiError(400, f"{what}: fields must be set")
    return fields


def _set_fields(target: dict[str, Any], style: dict[str, Any], fields: list[str]) -> None:
    names = list(style) if fields == ["*"] else fields
    for f in names:
        if f in style and style[f] not in (None, False, {}):
            target[f] = copy.deepcopy(style[f])
        else:
            target.pop(f, None)


@dataclass
class Paragraph:
    """A paragraph as a test reads it."""

    text: str
    style: str
    runs: list[tuple[str, dict[str, Any]]]

    def link(self) -> str | None:
        for _text, style in self.runs:
            if "link" in style:
                return str(style["link"].get("url"))
        return None

    @property
    def italic(self) -> bool:
        visible = [s for t, s in self.runs if t.strip()]
        return bool(visible) and all(s.get("italic") for s in visible)


@dataclass(frozen=True)
class Logged:
    """One request the server answered."""

    at: float
    method: str
    status: int
    principal: str


@dataclass(frozen=True)
class Write:
    """One applied write: when, to which document, and the text it inserted."""

    at: float
    document_id: str
    inserted: tuple[str, ...]


@dataclass
class _Fault:
    method: str
    status: int
    times: int
    retry_after: str | None
    after_apply: bool


class FakeGoogle:
    """The server; ``async with FakeGoogle() as google`` serves on 127.0.0.1."""

    def __init__(self, *, write_quota_per_min: int | None = None) -> None:
        self.write_quota_per_min = write_quota_per_min
        self.documents: dict[str, FakeDocument] = {}
        self.requests: list[Logged] = []
        self.writes: list[Write] = []
        self.on_write: Callable[[str], None] | None = None
        self.tokens: dict[str, str] = {}  # access token → principal
        self.token_requests: list[dict[str, Any]] = []
        self._keys: dict[str, RSAPublicKey] = {}  # service account email → public key
        self._users: dict[str, tuple[str, str]] = {}  # refresh token → (client id, client secret)
        self._faults: list[_Fault] = []
        self._window: dict[str, collections.deque[float]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/documents", self._create)
        app.router.add_route("*", "/v1/documents/{tail}", self._document)
        app.router.add_post("/drive/v3/files/{file_id}/permissions", self._permission)
        app.router.add_route("*", "/drive/v3/files/{file_id}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def docs_endpoint(self) -> str:
        return self.base_url + "/"

    @property
    def drive_endpoint(self) -> str:
        return self.base_url + "/drive/v3/"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    # --- credentials --------------------------------------------------------------------------

    def service_account_file(self, folder: Path, email: str = "sinks@couchpotato-test.iam.gserviceaccount.com") -> Path:
        """Write a service-account JSON whose key this server trusts and whose token_uri is this server."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self._keys[email] = key.public_key()
        info = {
            "type": "service_account",
            "project_id": "couchpotato-test",
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "token_uri": self.token_uri,
        }
        path = folder / "service-account.json"
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    def user_token(self) -> dict[str, str]:
        """An OAuth user token (client id, secret, refresh token) this server honours."""
        client_id, client_secret, refresh = f"{secrets.token_hex(6)}.apps", secrets.token_hex(12), secrets.token_hex(16)
        self._users[refresh] = (client_id, client_secret)
        return {
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh,
            "token_uri": self.token_uri,
        }

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working (a client must refresh)."""
        self.tokens.clear()

    # --- switches -----------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        status: int,
        times: int = 1,
        *,
        retry_after: float | str | None = None,
        after_apply: bool = False,
    ) -> None:
        """Answer ``status`` to the next ``times`` calls of ``method`` (``documents.batchUpdate``…);
        with ``after_apply`` a write is applied first (the client cannot know it went through)."""
        ra = None if retry_after is None else str(retry_after)
        self._faults.append(_Fault(method, status, times, ra, after_apply))

    def count(self, method: str, status: int | None = None) -> int:
        return sum(1 for r in self.requests if r.method == method and (status is None or r.status == status))

    def new_document(self, title: str, paragraphs: Sequence[str] = ()) -> str:
        """A document someone else made (to append to), with these paragraphs."""
        doc = FakeDocument(f"doc{secrets.token_hex(12)}", title)
        self.documents[doc.id] = doc
        for p in paragraphs:
            self.type_at_end(doc.id, p + "\n")
        return doc.id

    def type_paragraph(self, document_id: str, text: str, before: int) -> None:
        """A person types a paragraph before paragraph number ``before`` (0 = the first)."""
        doc = self.documents[document_id]
        start = doc.paragraph_bounds()[before][0]
        doc.insert(start, text + "\n")
        doc.revision += 1

    def type_at_end(self, document_id: str, text: str, style: dict[str, Any] | None = None) -> None:
        """A person types at the end of the last paragraph (no newline unless ``text`` has one),
        in ``style`` (``{"bold": True}``…)."""
        doc = self.documents[document_id]
        at = doc.end_index - 1
        doc.insert(at, text)
        for i in range(at - 1, at - 1 + len(units(text))):
            doc.styles[i] = dict(style or {})
        doc.revision += 1

    def delete_paragraph(self, document_id: str, number: int) -> None:
        """A person deletes a paragraph with its text."""
        doc = self.documents[document_id]
        a, b = doc.paragraph_bounds()[number]
        doc.delete(a, b)
        doc.revision += 1

    def paragraphs(self, document_id: str) -> list[Paragraph]:
        """The document's paragraphs (without the trailing empty one Docs keeps)."""
        out = []
        for el in self.documents[document_id].to_json()["body"]["content"][1:]:
            par = el["paragraph"]
            runs = [(e["textRun"]["content"], e["textRun"]["textStyle"]) for e in par["elements"]]
            out.append(
                Paragraph("".join(t for t, _ in runs).rstrip("\n"), par["paragraphStyle"]["namedStyleType"], runs)
            )
        if out and out[-1].text == "":
            out.pop()
        return out

    def named_ranges(self, document_id: str) -> list[str]:
        return [r.name for r in self.documents[document_id].ranges]

    # --- handlers -----------------------------------------------------------------------------

    def _error(self, code: int, message: str, status: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(
            {"error": {"code": code, "message": message, "status": status}}, status=code, headers=headers
        )

    def _log(self, method: str, status: int, principal: str) -> None:
        self.requests.append(Logged(time.time(), method, status, principal))

    def _auth(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token not in self.tokens:
            raise ApiError(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        return self.tokens[token]

    def _fault(self, method: str) -> _Fault | None:
        for f in self._faults:
            if f.method == method and f.times > 0:
                f.times -= 1
                return f
        return None

    def _quota(self, method: str, principal: str) -> None:
        if self.write_quota_per_min is None or method not in WRITE_METHODS:
            return
        window = self._window.setdefault(principal, collections.deque())
        now = time.time()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.write_quota_per_min:
            wait = max(1, int(window[0] + 60 - now) + 1)
            raise ApiError(
                429,
                "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'",
                "RESOURCE_EXHAUSTED",
                {"Retry-After": str(wait)},
            )
        window.append(now)

    async def _api(self, request: web.Request, method: str, handler: Callable[[str], Any]) -> web.Response:
        principal = ""
        try:
            principal = self._auth(request)
            fault = self._fault(method)
            if fault is not None and not fault.after_apply:
                raise ApiError(fault.status, "injected failure", "INJECTED", _retry_after(fault.retry_after))
            self._quota(method, principal)
            result = await handler(principal)
            if fault is not None:
                raise ApiError(
                    fault.status,
                    "injected failure after the write was applied",
                    "INJECTED",
                    _retry_after(fault.retry_after),
                )
        except ApiError as e:
            self._log(method, e.code, principal)
            return self._error(e.code, e.message, e.status, e.headers)
        self._log(method, 200, principal)
        return web.json_response(result)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        self.token_requests.append({k: str(v) for k, v in form.items()})
        principal: str | None = None
        if grant == JWT_BEARER:
            principal = self._check_assertion(str(form.get("assertion", "")))
        elif grant == "refresh_token":
            known = self._users.get(str(form.get("refresh_token", "")))
            if known == (str(form.get("client_id", "")), str(form.get("client_secret", ""))):
                principal = f"user:{known[0]}"
        if principal is None:
            self._log("oauth.token", 400, "")
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid grant"}, status=400)
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = principal
        self._log("oauth.token", 200, principal)
        return web.json_response({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _check_assertion(self, assertion: str) -> str | None:
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            claims = json.loads(_b64(claims_b64))
            key = self._keys[claims["iss"]]
            key.verify(_b64(sig_b64), f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return None
        # google-auth puts Google's own token endpoint in ``aud`` whatever the token_uri
        if (
            claims.get("aud") not in (self.token_uri, GOOGLE_TOKEN_AUDIENCE)
            or float(claims.get("exp", 0)) < time.time()
        ):
            return None
        return str(claims.get("sub") or claims["iss"])

    async def _create(self, request: web.Request) -> web.Response:
        async def create(principal: str) -> dict[str, Any]:
            body = await request.json()
            doc = FakeDocument(f"doc{secrets.token_hex(12)}", str(body.get("title", "Untitled document")))
            doc.permissions.append({"role": "owner", "emailAddress": principal})
            self.documents[doc.id] = doc
            self.writes.append(Write(time.time(), doc.id, ()))
            return doc.to_json()

        return await self._api(request, "documents.create", create)

    async def _document(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"]
        doc_id, _, verb = tail.partition(":")

        def find() -> FakeDocument:
            doc = self.documents.get(doc_id)
            if doc is None:
                raise ApiError(404, f"Requested entity was not found: {doc_id}", "NOT_FOUND")
            return doc

        if request.method == "GET" and not verb:

            async def get(_principal: str) -> dict[str, Any]:
                return find().to_json()

            return await self._api(request, "documents.get", get)
        if request.method == "POST" and verb == "batchUpdate":

            async def update(_principal: str) -> dict[str, Any]:
                body = await request.json()
                doc = find()
                required = body.get("writeControl", {}).get("requiredRevisionId")
                if required is not None and required != f"rev-{doc.revision}":
                    raise ApiError(
                        400, f"The document revision {required} is not the latest revision.", "FAILED_PRECONDITION"
                    )
                work = copy.deepcopy(doc)
                replies = [work.apply(r, self._ids) for r in body.get("requests", [])]
                work.revision += 1
                self.documents[doc_id] = work
                inserted = tuple(
                    from_units(units(r["insertText"]["text"])) for r in body.get("requests", []) if "insertText" in r
                )
                self.writes.append(Write(time.time(), doc_id, inserted))
                if self.on_write is not None:
                    self.on_write(doc_id)
                return {
                    "documentId": doc_id,
                    "replies": replies,
                    "writeControl": {"requiredRevisionId": f"rev-{work.revision}"},
                }

            return await self._api(request, "documents.batchUpdate", update)
        return self._error(404, f"no route {request.method} {request.path}", "NOT_FOUND")

    async def _permission(self, request: web.Request) -> web.Response:
        async def create(_principal: str) -> dict[str, Any]:
            doc = self.documents.get(request.match_info["file_id"])
            if doc is None:
                raise ApiError(404, "File not found", "NOT_FOUND")
            body = await request.json()
            if body.get("type") not in ("user", "group", "domain", "anyone") or body.get("role") not in (
                "reader",
                "commenter",
                "writer",
                "owner",
                "organizer",
                "fileOrganizer",
            ):
                raise ApiError(400, "Invalid permission type or role")
            perm = {
                "id": secrets.token_hex(8),
                **body,
                "sendNotificationEmail": request.query.get("sendNotificationEmail", "true"),
            }
            doc.permissions.append(perm)
            return {"kind": "drive#permission", "id": perm["id"], "type": body["type"], "role": body["role"]}

        return await self._api(request, "permissions.create", create)

    async def _file(self, request: web.Request) -> web.Response:
        doc = self.documents.get(request.match_info["file_id"])

        async def get(_principal: str) -> dict[str, Any]:
            if doc is None:
                raise ApiError(404, "File not found", "NOT_FOUND")
            return {"id": doc.id, "name": doc.title, "parents": list(doc.parents)}

        async def update(_principal: str) -> dict[str, Any]:
            if doc is None:
                raise ApiError(404, "File not found", "NOT_FOUND")
            remove = [p for p in request.query.get("removeParents", "").split(",") if p]
            add = [p for p in request.query.get("addParents", "").split(",") if p]
            doc.parents = [p for p in doc.parents if p not in remove] + [p for p in add if p not in doc.parents]
            return {"id": doc.id, "parents": list(doc.parents)}

        if request.method == "GET":
            return await self._api(request, "files.get", get)
        if request.method == "PATCH":
            return await self._api(request, "files.update", update)
        return self._error(404, f"no route {request.method} {request.path}", "NOT_FOUND")


def _retry_after(value: str | None) -> dict[str, str] | None:
    return {"Retry-After": value} if value is not None else None


def _b64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0, interval_s: float = 0.02) -> None:
    """Poll ``predicate`` until it holds (raises TimeoutError)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - state changed by other tasks and threads: polled
            await asyncio.sleep(interval_s)


__all__ = ["FakeDocument", "FakeGoogle", "Logged", "Paragraph", "Write", "from_units", "units", "wait_for"]
