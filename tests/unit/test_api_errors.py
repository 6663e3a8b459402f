"""The API's one mapping from exceptions to answers (``katopotato.api.errors.ERROR_MAP``)."""

from __future__ import annotations

import pytest

from couchpotato import errors as core
from couchpotato.browser.errors import NoAudio
from docsweb import DuplicateSink
from hotpotato.errors import SwapRefused
from katopotato import errors as kp
from katopotato.api.errors import ERROR_MAP, ApiError, Conflict, from_exception


@pytest.mark.parametrize(("cls", "answer", "code"), ERROR_MAP, ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_expected_exception_has_one_answer(cls: type[BaseException], answer: type[ApiError], code: str) -> None:
    e = cls("one line") if cls is not DuplicateSink else DuplicateSink("one line")
    mapped = from_exception(e)
    assert mapped is not None and type(mapped) is answer and mapped.message == "one line"
    assert mapped.code == getattr(e, "code", None) or mapped.code == code


def test_codes_of_the_service_and_its_packages() -> None:
    mapped = from_exception(SwapRefused("a swap is in progress"))
    assert isinstance(mapped, Conflict) and (mapped.status, mapped.code) == (409, "swap_refused")
    assert (mapped := from_exception(NoAudio("silent page"))) is not None and mapped.code == "no_audio"
    mapped = from_exception(kp.InvalidQuery("empty"))
    assert mapped is not None and (mapped.status, mapped.code) == (400, "invalid_query")
    assert (mapped := from_exception(core.UrlRefused("private"))) is not None and mapped.code == "url_refused"
    assert from_exception(RuntimeError("a bug")) is None  # a 500, logged


def test_a_config_error_in_a_handler_is_the_services_own_a_500() -> None:
    # what a client sends is validated where it enters; a ConfigError past that is the service's
    assert from_exception(core.ConfigError("corrections file /etc/x.toml not found")) is None
    assert from_exception(kp.ConfigError("COUCHPOTATO_SEARCH='ftp://' …")) is None
    mapped = from_exception(kp.UnsupportedOption("the ASR model tiny.en only knows English"))
    assert mapped is not None and (mapped.status, mapped.code) == (422, "unsupported_option")


def test_the_search_server_down_is_a_503() -> None:
    mapped = from_exception(kp.SearchUnavailable("cannot reach Elasticsearch at http://es:9200"))
    assert mapped is not None and (mapped.status, mapped.code) == (503, "search_unavailable")
