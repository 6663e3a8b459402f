"""A local stand-in for the Elasticsearch REST calls the service's backend makes through the official
client: index templates, indices and aliases, documents, ``_bulk``, ``_refresh`` and ``_search``
with bool/match/match_phrase/match_phrase_prefix/term/terms/range queries, ``search_after``,
highlights and terms aggregations.

No Elasticsearch server can be installed on these machines; this is what the backend's contract
tests run against in CI (``ELASTICSEARCH_URL`` runs them against a real server too). It does the
matching itself, over an in-memory inverted index built from each index's mappings, so a mapping
the backend gets wrong fails the tests as it would on a server:

* analysis as the mapping and the index template say: the standard tokenizer (words, keeping
  inner apostrophes), ``lowercase``, ``stop`` (``_english_``: Lucene's list), ``stemmer``
  (``english``/``porter``: the Porter stemmer, SQLite's FTS5 implementation of it, and
  ``possessive_english``), ``shingle``; the built-in ``english`` and ``standard`` analyzers;
* positions with the gaps stop words leave, so phrases match as Lucene's do;
* ``dynamic: strict`` refuses unknown fields; documents become searchable at ``_refresh`` or once
  the index's ``refresh_interval`` has passed (and a get by id is real-time), as on a server.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from aiohttp import web

ENGLISH_STOP = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_porter_lock = threading.Lock()
_porter_db = sqlite3.connect(":memory:", check_same_thread=False)
_porter_db.execute("CREATE VIRTUAL TABLE w USING fts5(x, tokenize='porter ascii')")
_porter_db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'row')")


@lru_cache(maxsize=65536)
def porter(word: str) -> str:
    """The Porter stem of one lower-case word (SQLite's FTS5 porter tokenizer)."""
    if not word.isascii() or not word.isalnum():
        return word
    with _porter_lock:
        _porter_db.execute("INSERT INTO w(rowid, x) VALUES (1, ?)", (word,))
        row = _porter_db.execute("SELECT term FROM v").fetchone()
        _porter_db.execute("DELETE FROM w")
    return str(row[0]) if row else word


@dataclass
class Token:
    term: str
    position: int
    start: int
    end: int


def _filter_chain(name: str, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The token filters of an analyzer, as definitions."""
    if name == "english":
        return [
            {"type": "stemmer", "language": "possessive_english"},
            {"type": "lowercase"},
            {"type": "stop", "stopwords": "_english_"},
            {"type": "stemmer", "language": "english"},
        ]
    if name in ("standard", "default"):
        return [{"type": "lowercase"}]
    custom = settings.get("analysis", {}).get("analyzer", {}).get(name)
    if custom is None:
        raise ValueError(f"failed to find analyzer [{name}]")
    defined = settings.get("analysis", {}).get("filter", {})
    chain = []
    for f in custom.get("filter", []):
        if f in defined:
            chain.append(defined[f])
        elif f in ("lowercase", "porter_stem"):
            chain.append({"type": f})
        else:
            raise ValueError(f"failed to find filter under name [{f}]")
    return chain


def analyze(text: str, chain: list[dict[str, Any]]) -> list[Token]:
    tokens = [Token(m.group(), i, m.start(), m.end()) for i, m in enumerate(_WORD.finditer(text))]
    for f in chain:
        kind = f.get("type")
        if kind == "lowercase":
            for t in tokens:
                t.term = t.term.lower()
        elif kind == "stop":
            if f.get("stopwords", "_english_") != "_english_":
                raise ValueError(f"stand-in: stop words {f.get('stopwords')!r} not supported")
            tokens = [t for t in tokens if t.term.lower() not in ENGLISH_STOP]
        elif kind == "porter_stem" or (kind == "stemmer" and f.get("language") in ("english", "porter")):
            for t in tokens:
                t.term = porter(t.term)
        elif kind == "stemmer" and f.get("language") == "possessive_english":
            for t in tokens:
                t.term = re.sub(r"['’][sS]$", "", t.term)
        elif kind == "shingle":
            lo, hi = int(f.get("min_shingle_size", 2)), int(f.get("max_shingle_size", 2))
            out = [] if f.get("output_unigrams", True) is False else list(tokens)
            by_pos = {t.position: t for t in tokens}
            for t in tokens:
                for n in range(lo, hi + 1):
                    run = [by_pos.get(t.position + k) for k in range(n)]
                    if all(run):
                        words = [r.term for r in run if r]
                        out.append(Token(" ".join(words), t.position, t.start, run[-1].end if run[-1] else t.end))
            tokens = out
        else:
            raise ValueError(f"stand-in: token filter {f!r} not supported")
    return tokens


@dataclass
class Index:
    name: str
    settings: dict[str, Any]
    mappings: dict[str, Any]
    aliases: set[str] = field(default_factory=set)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # real-time (get by id)
    visible: dict[str, dict[str, Any]] = field(default_factory=dict)  # as of the last refresh
    postings: dict[str, dict[str, dict[str, list[Token]]]] = field(default_factory=dict)  # field → term → doc → tokens
    values: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # field → doc → keyword/number values
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # dotted path → mapping
    sources: dict[str, str] = field(default_factory=dict)  # a multi-field's path → its source field's
    dirty_at: float | None = None  # written since the last refresh, at (monotonic)

    def __post_init__(self) -> None:
        self.fields, self.sources = {}, {}
        self._walk(self.mappings.get("properties", {}), "")

    def _walk(self, props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            if "properties" in spec:
                self._walk(spec["properties"], path + ".")
                continue
            self.fields[path] = spec
            for sub, subspec in spec.get("fields", {}).items():
                self.fields[f"{path}.{sub}"] = subspec
                self.sources[f"{path}.{sub}"] = path

    def check(self, source: dict[str, Any], prefix: str = "") -> None:
        """``dynamic: strict``: a field the mapping does not name is refused."""
        if self.mappings.get("dynamic") not in ("strict", "false", False) and prefix == "":
            return
        for k, v in source.items():
            path = prefix + k
            if isinstance(v, dict):
                self.check(v, path + ".")
            elif path not in self.fields:
                raise ValueError(f"mapping set to strict, dynamic introduction of [{k}] within [_doc] is not allowed")

    def chain(self, path: str) -> list[dict[str, Any]]:
        spec = self.fields[path]
        return _filter_chain(spec.get("search_analyzer") or spec.get("analyzer") or "standard", self.settings)

    def written(self) -> None:
        if self.dirty_at is None:
            self.dirty_at = time.monotonic()

    def refresh_if_due(self) -> None:
        """The periodic refresh (``refresh_interval``, 1 s unless the settings say otherwise; -1:
        never), done when a search comes, as a server's idle shards do."""
        interval = str(self.settings.get("refresh_interval", "1s"))
        if self.dirty_at is None or interval == "-1":
            return
        seconds = float(interval[:-2]) / 1000 if interval.endswith("ms") else float(interval.rstrip("s"))
        if time.monotonic() - self.dirty_at >= seconds:
            self.refresh()

    def refresh(self) -> None:
        self.dirty_at = None
        self.visible = {k: json.loads(json.dumps(v)) for k, v in self.docs.items()}
        self.postings, self.values = defaultdict(lambda: defaultdict(dict)), defaultdict(dict)
        for doc_id, source in self.visible.items():
            for path, spec in self.fields.items():
                value = _get(source, self.sources.get(path, path))
                if value is None:
                    continue
                items = value if isinstance(value, list) else [value]
                if spec.get("type") == "text":
                    for text in items:
                        for t in analyze(str(text), self.chain(path)):
                            self.postings[path][t.term].setdefault(doc_id, []).append(t)
                else:
                    self.values[path][doc_id] = items


def _get(source: dict[str, Any], path: str) -> Any:
    cur: Any = source
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


class Matcher:
    """Evaluates a query over one index: the matching ids, and the tokens to highlight per doc."""

    def __init__(self, index: Index) -> None:
        self.ix = index
        self.marks: dict[str, dict[str, list[Token]]] = defaultdict(lambda: defaultdict(list))  # doc → field → tokens

    def all(self) -> set[str]:
        return set(self.ix.visible)

    def run(self, q: dict[str, Any]) -> set[str]:
        ((kind, body),) = q.items()
        if kind == "match_all":
            return self.all()
        if kind == "bool":
            return self._bool(body)
        ((path, spec),) = body.items()
        if kind in ("match", "match_phrase", "match_phrase_prefix"):
            spec = spec if isinstance(spec, dict) else {"query": spec}
            return self._text(kind, path, spec)
        if kind == "term":
            value = spec["value"] if isinstance(spec, dict) else spec
            return {d for d, vs in self.ix.values.get(path, {}).items() if value in vs}
        if kind == "terms":
            return {d for d, vs in self.ix.values.get(path, {}).items() if set(spec) & set(vs)}
        if kind == "range":
            ops = {"gte": float.__ge__, "gt": float.__gt__, "lte": float.__le__, "lt": float.__lt__}
            return {
                d
                for d, vs in self.ix.values.get(path, {}).items()
                if any(all(ops[o](float(v), float(x)) for o, x in spec.items() if o in ops) for v in vs)
            }
        raise ValueError(f"stand-in: query [{kind}] not supported")

    def _bool(self, body: dict[str, Any]) -> set[str]:
        def clauses(key: str) -> list[dict[str, Any]]:
            c = body.get(key, [])
            return c if isinstance(c, list) else [c]

        result = self.all()
        for c in clauses("must") + clauses("filter"):
            result &= self.run(c)
        should = clauses("should")
        required = body.get("minimum_should_match", 0 if clauses("must") or clauses("filter") else 1)
        if should:
            counts: dict[str, int] = defaultdict(int)
            for c in should:
                for d in self.run(c):
                    counts[d] += 1
            result = {d for d in result if counts[d] >= int(required)}
        for c in clauses("must_not"):
            result -= self.run(c)
        return result

    def _text(self, kind: str, path: str, spec: dict[str, Any]) -> set[str]:
        if path not in self.ix.fields:
            return set()
        tokens = analyze(str(spec["query"]), self.ix.chain(path))
        postings = self.ix.postings.get(path, {})
        if not tokens:
            return self.all() if spec.get("zero_terms_query") == "all" else set()
        if kind == "match":
            found: dict[str, list[Token]] = defaultdict(list)
            for t in tokens:
                for d, ts in postings.get(t.term, {}).items():
                    found[d] += ts
            if spec.get("operator", "or").lower() == "and":
                need = {t.term for t in tokens}
                found = {d: ts for d, ts in found.items() if {t.term for t in ts} >= need}
            for d, ts in found.items():
                self.marks[d][path] += ts
            return set(found)
        last = [tokens[-1].term]
        if kind == "match_phrase_prefix":
            last = sorted(t for t in postings if t.startswith(tokens[-1].term))[: int(spec.get("max_expansions", 50))]
        base = tokens[0].position
        wanted = [({t.term}, t.position - base) for t in tokens[:-1]] + [(set(last), tokens[-1].position - base)]
        candidates: set[str] | None = None
        for terms, _ in wanted:
            docs = {d for t in terms for d in postings.get(t, {})}
            candidates = docs if candidates is None else candidates & docs
        out = set()
        for d in candidates or set():
            at: dict[int, Token] = {}
            by_term: dict[int, dict[str, Token]] = defaultdict(dict)
            for terms, _ in wanted:
                for t in terms:
                    for tok in postings.get(t, {}).get(d, []):
                        by_term[tok.position][tok.term] = tok
                        at[tok.position] = tok
            for start in sorted(at):
                run = [next((by_term[start + off][t] for t in terms if t in by_term.get(start + off, {})), None)
                       for terms, off in wanted]
                if all(run):
                    out.add(d)
                    self.marks[d][path] += [r for r in run if r]
        return out


def highlight(text: str, tokens: list[Token], spec: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    pre = (spec.get("pre_tags") or defaults.get("pre_tags") or ["<em>"])[0]
    post = (spec.get("post_tags") or defaults.get("post_tags") or ["</em>"])[0]
    size = int(spec.get("fragment_size", defaults.get("fragment_size", 100)))
    count = int(spec.get("number_of_fragments", defaults.get("number_of_fragments", 5)))
    spans = sorted({(t.start, t.end) for t in tokens})
    if not spans:
        return []
    merged: list[tuple[int, int]] = []
    for s, e in spans:  # a shingle and its words overlap: one mark
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))

    def mark(lo: int, hi: int) -> str:
        out, pos = [], lo
        for s, e in merged:
            if s >= lo and e <= hi:
                out += [text[pos:s], pre, text[s:e], post]
                pos = e
        return "".join(out) + text[pos:hi]

    if count == 0 or len(text) <= size:
        return [mark(0, len(text))]
    fragments, lo = [], 0
    while lo < len(text) and len(fragments) < count:
        hi = min(len(text), lo + size)
        if hi < len(text) and " " in text[lo:hi]:
            hi = text.rindex(" ", lo, hi)
        if any(s >= lo and e <= hi for s, e in merged):
            fragments.append(mark(lo, hi).strip())
        lo = hi + 1
    return fragments


class StandIn:
    """The cluster's state, and its aiohttp app (``app``)."""

    def __init__(self) -> None:
        self.templates: dict[str, dict[str, Any]] = {}
        self.indices: dict[str, Index] = {}
        self.requests: list[tuple[str, str]] = []
        self.down = False  # True: every request is answered 503, as by a cluster that lost its master
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # --- resolution ---------------------------------------------------------------------------

    def resolve(self, name: str) -> list[Index]:
        found = [ix for n, ix in self.indices.items() if fnmatch.fnmatchcase(n, name) or name in ix.aliases]
        if not found:
            raise LookupError(name)
        return found

    def create(self, name: str, body: dict[str, Any]) -> Index:
        if name in self.indices:
            raise FileExistsError(name)
        settings: dict[str, Any] = {}
        mappings: dict[str, Any] = {}
        matching = [
            t for t in self.templates.values() if any(fnmatch.fnmatchcase(name, p) for p in t["index_patterns"])
        ]
        if matching:
            best = max(matching, key=lambda t: t.get("priority", 0))["template"]
            settings, mappings = json.loads(json.dumps(best.get("settings", {}))), best.get("mappings", {})
        settings.update(body.get("settings", {}))
        mappings = body.get("mappings") or mappings
        ix = Index(name, settings.get("index", settings), mappings)
        for field_path in ix.fields:
            if ix.fields[field_path].get("type") == "text":
                ix.chain(field_path)  # an unknown analyzer is refused at creation, as on a server
        self.indices[name] = ix
        return ix

    def index_for_write(self, name: str) -> Index:
        if name in self.indices:
            return self.indices[name]
        aliased = [ix for ix in self.indices.values() if name in ix.aliases]
        if aliased:
            return aliased[0]
        return self.create(name, {})

    # --- HTTP ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        parts = [unquote(p) for p in request.path.strip("/").split("/") if p]
        self.requests.append((request.method, request.path))
        raw = await request.read()
        if self.down:
            body = _error("master_not_discovered_exception", "no master")
            return web.json_response(body, status=503, headers={"X-Elastic-Product": "Elasticsearch"})
        try:
            status, body = self.route(request.method, parts, raw, dict(request.query))
        except LookupError as e:
            status, body = 404, _error("index_not_found_exception", f"no such index [{e.args[0]}]")
        except FileExistsError as e:
            status, body = 400, _error("resource_already_exists_exception", f"index [{e.args[0]}] already exists")
        except (ValueError, KeyError, TypeError) as e:
            status, body = 400, _error("x_content_parse_exception", str(e))
        headers = {"X-Elastic-Product": "Elasticsearch"}
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def route(self, method: str, parts: list[str], raw: bytes, params: dict[str, str]) -> tuple[int, Any]:
        body: Any = json.loads(raw) if raw and not (parts and parts[-1] == "_bulk") else {}
        if not parts:
            return 200, {"name": "stand-in", "cluster_name": "couchpotato-tests", "version": {"number": "9.1.0"},
                         "tagline": "You Know, for Search"}
        if parts[0] == "_index_template" and len(parts) == 2 and method == "PUT":
            self.templates[parts[1]] = body
            return 200, {"acknowledged": True}
        if parts[0] == "_index_template" and len(parts) == 2 and method == "DELETE":
            if self.templates.pop(parts[1], None) is None:
                raise LookupError(parts[1])
            return 200, {"acknowledged": True}
        if parts[0] == "_bulk":
            return 200, self.bulk(raw.decode(), params)
        if parts[0] == "_aliases" and method == "POST":
            for action in body["actions"]:
                ((kind, spec),) = action.items()
                for ix in self.resolve(spec["index"]):
                    (ix.aliases.add if kind == "add" else ix.aliases.discard)(spec["alias"])
            return 200, {"acknowledged": True}
        if parts[0] == "_alias" and len(parts) == 2:
            found = {n: {"aliases": {parts[1]: {}}} for n, ix in self.indices.items() if parts[1] in ix.aliases}
            return (200, found) if found else (404, {"error": f"alias [{parts[1]}] missing", "status": 404})
        name = parts[0]
        if len(parts) == 1:
            if method == "HEAD":
                self.resolve(name)
                return 200, None
            if method == "PUT":
                self.create(name, body)
                return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
            if method == "DELETE":
                for ix in self.resolve(name):
                    del self.indices[ix.name]
                return 200, {"acknowledged": True}
        if parts[1] == "_refresh":
            for ix in self.resolve(name):
                ix.refresh()
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if parts[1] == "_search":
            return 200, self.search(self.resolve(name), body)
        if parts[1] == "_doc" and len(parts) == 3:
            return self.doc(method, name, parts[2], body)
        raise ValueError(f"stand-in: {method} /{'/'.join(parts)} not supported")

    def doc(self, method: str, name: str, doc_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method in ("PUT", "POST"):
            ix = self.index_for_write(name)
            ix.check(body)
            result = "updated" if doc_id in ix.docs else "created"
            ix.docs[doc_id] = body
            ix.written()
            return (200 if result == "updated" else 201), {"_index": ix.name, "_id": doc_id, "result": result}
        ix = self.resolve(name)[0]
        if method == "GET":
            if doc_id not in ix.docs:
                return 404, {"_index": ix.name, "_id": doc_id, "found": False}
            return 200, {"_index": ix.name, "_id": doc_id, "found": True, "_source": ix.docs[doc_id]}
        if method == "DELETE":
            existed = ix.docs.pop(doc_id, None) is not None
            ix.written()
            return (200 if existed else 404), {"_index": ix.name, "_id": doc_id,
                                               "result": "deleted" if existed else "not_found"}
        raise ValueError(f"stand-in: {method} on a document not supported")

    def bulk(self, text: str, params: dict[str, str]) -> dict[str, Any]:
        lines = [line for line in text.split("\n") if line.strip()]
        items, errors, i = [], False, 0
        while i < len(lines):
            ((op, meta),) = json.loads(lines[i]).items()
            i += 1
            name, doc_id = meta.get("_index") or params["index"], str(meta["_id"])
            if op == "delete":
                ix = self.index_for_write(name)
                existed = ix.docs.pop(doc_id, None) is not None
                ix.written()
                items.append({op: {"_index": ix.name, "_id": doc_id, "status": 200 if existed else 404}})
                continue
            source = json.loads(lines[i])
            i += 1
            ix = self.index_for_write(name)
            try:
                ix.check(source)
            except ValueError as e:
                errors = True
                items.append({op: {"_index": ix.name, "_id": doc_id, "status": 400,
                                   "error": {"type": "strict_dynamic_mapping_exception", "reason": str(e)}}})
                continue
            if op == "create" and doc_id in ix.docs:
                errors = True
                items.append({op: {"_index": ix.name, "_id": doc_id, "status": 409,
                                   "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}})
                continue
            result = "updated" if doc_id in ix.docs else "created"
            ix.docs[doc_id] = source
            ix.written()
            items.append({op: {"_index": ix.name, "_id": doc_id, "status": 200 if result == "updated" else 201,
                               "result": result}})
        if params.get("refresh") in ("true", "wait_for", ""):
            for ix in {id(x): x for x in self.indices.values()}.values():
                ix.refresh()
        return {"took": 1, "errors": errors, "items": items}

    def search(self, indices: list[Index], body: dict[str, Any]) -> dict[str, Any]:
        (ix,) = indices  # the backend searches one alias on one index
        ix.refresh_if_due()
        m = Matcher(ix)
        matched = m.run(body.get("query", {"match_all": {}}))
        sort = body.get("sort", [])
        keys: list[tuple[str, bool]] = []
        for s in sort:
            ((f, o),) = (s.items() if isinstance(s, dict) else [(s, "asc")])
            keys.append((f, (o if isinstance(o, str) else o.get("order", "asc")) == "desc"))

        def sort_values(d: str) -> list[Any]:
            return [(ix.values.get(f, {}).get(d) or [None])[0] for f, _ in keys]

        ordered = sorted(matched, key=lambda d: d)
        for idx in reversed(range(len(keys))):
            ordered.sort(key=lambda d, i=idx: sort_values(d)[i], reverse=keys[idx][1])
        if "search_after" in body:
            after = body["search_after"]

            def beyond(d: str) -> bool:
                for v, a, (_, desc) in zip(sort_values(d), after, keys, strict=True):
                    if v != a:
                        return bool(v < a) if desc else bool(v > a)
                return False

            ordered = [d for d in ordered if beyond(d)]
        size = int(body.get("size", 10))
        hits = []
        fields = body.get("highlight", {}).get("fields", {})
        for d in ordered[:size]:
            hit: dict[str, Any] = {"_index": ix.name, "_id": d, "_score": None, "_source": ix.visible[d]}
            if keys:
                hit["sort"] = sort_values(d)
            marks = {}
            for f, spec in fields.items():
                frags = highlight(str(_get(ix.visible[d], f) or ""), m.marks[d].get(f, []), spec, body["highlight"])
                if frags:
                    marks[f] = frags
            if marks:
                hit["highlight"] = marks
            hits.append(hit)
        out: dict[str, Any] = {
            "took": 1,
            "timed_out": False,
            "hits": {"total": {"value": len(matched), "relation": "eq"}, "max_score": None, "hits": hits},
        }
        if body.get("aggs") or body.get("aggregations"):
            out["aggregations"] = {}
            for name, agg in (body.get("aggs") or body.get("aggregations")).items():
                spec = agg["terms"]
                counts: dict[Any, int] = defaultdict(int)
                for d in matched:
                    for v in set(ix.values.get(spec["field"], {}).get(d, [])):
                        counts[v] += 1
                buckets = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                size_ = int(spec.get("size", 10))
                out["aggregations"][name] = {
                    "doc_count_error_upper_bound": 0,
                    "sum_other_doc_count": sum(c for _, c in buckets[size_:]),
                    "buckets": [{"key": k, "doc_count": c} for k, c in buckets[:size_]],
                }
        return out


def _error(kind: str, reason: str) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": 400}


__all__ = ["StandIn", "analyze", "porter"]
