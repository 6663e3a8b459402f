"""Settings of the service, read once at the edge (``katopotato serve``, ``katopotato tokens``).

Sources, later ones winning: built-in embedded defaults, an optional TOML file (``--config`` or
``COUCHPOTATO_CONFIG``), then environment variables. Only this module (and the core's own
``couchpotato.settings``) reads ``os.environ``; everything below takes a ``Settings``.

| key (TOML)      | environment variable         | embedded default                                   |
|-----------------|------------------------------|----------------------------------------------------|
| data_dir        | COUCHPOTATO_DATA_DIR         | ``$XDG_DATA_HOME/couchpotato`` (~/.local/share/…)  |
| broker          | COUCHPOTATO_BROKER           | ``memory://``                                      |
| database        | COUCHPOTATO_DATABASE         | ``sqlite+aiosqlite:///<data dir>/couchpotato.db``  |
| search          | COUCHPOTATO_SEARCH           | in the database: ``sqlite://`` (FTS5), ``postgresql://`` |
| blobs           | COUCHPOTATO_BLOBS            | ``file://<data dir>/blobs``                        |
| asr             | COUCHPOTATO_ASR              | ``faster-whisper://tiny.en``                       |
| api_token       | COUCHPOTATO_API_TOKEN        | none: an admin token is generated on first start   |
| url_allowlist   | COUCHPOTATO_URL_ALLOWLIST    | none: only public addresses                        |
| keep_audio      | COUCHPOTATO_KEEP_AUDIO       | true (captured audio is kept, for playback)        |
| asr_workers     | COUCHPOTATO_ASR_WORKERS      | 2 (segments of one session transcribed at once)    |
| public_url      | COUCHPOTATO_PUBLIC_URL       | none: console links are relative (``/#…``)         |
| workers         | COUCHPOTATO_WORKERS          | 1 embedded job worker (``serve --workers N``)      |
| capture_slots   | COUCHPOTATO_CAPTURE_SLOTS    | 16 sessions captured at once by the embedded workers |
| partials        | COUCHPOTATO_PARTIALS         | true (interim text while a client follows it)      |
| entities        | COUCHPOTATO_ENTITIES         | ``rules://`` (gazetteer; ``comprehend://REGION``)  |
| oidc_issuer     | COUCHPOTATO_OIDC_ISSUER      | none: OIDC off, API tokens only (docs/auth.md)     |
| oidc_…          | COUCHPOTATO_OIDC_…           | audience, client_id, client_secret, group_scopes,  |
|                 |                              | groups_claim, allowed_domains, first_login_group, session_ttl_s |

The SMS plugin's Twilio settings are read here too (``COUCHPOTATO_TWILIO_ACCOUNT_SID``,
``COUCHPOTATO_TWILIO_AUTH_TOKEN``, ``COUCHPOTATO_TWILIO_API_URL``, ``COUCHPOTATO_TWILIO_MESSAGING_SERVICE_SID``,
``COUCHPOTATO_TWILIO_FROM_NUMBERS``) and handed to the plugin with ``public_url`` (docs/sms.md).

The transcript sinks' settings (Google credentials and endpoints) are read here too, by
``docsweb.DocsWebSettings.from_env`` (``GOOGLE_APPLICATION_CREDENTIALS``,
``COUCHPOTATO_GOOGLE_DOCS_ENDPOINT``, ``COUCHPOTATO_GOOGLE_DRIVE_ENDPOINT``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from couchpotato.constants import DEFAULT_ASR_WORKERS, DEFAULT_MODEL
from couchpotato.settings import CoreSettings
from docsweb import DocsWebSettings

from .errors import ConfigError
from .oidc.config import DEFAULT_GROUPS_CLAIM, DEFAULT_SESSION_TTL_S, OidcSettings, parse_group_scopes

ENV_PREFIX = "COUCHPOTATO_"
CONFIG_ENV = "COUCHPOTATO_CONFIG"
DATABASE_FILE = "couchpotato.db"
_KEYS = (
    "data_dir",
    "broker",
    "database",
    "search",
    "blobs",
    "asr",
    "api_token",
    "url_allowlist",
    "keep_audio",
    "asr_workers",
    "public_url",
    "workers",
    "capture_slots",
    "partials",
    "oidc_issuer",
    "oidc_audience",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_group_scopes",
    "oidc_groups_claim",
    "oidc_allowed_domains",
    "oidc_first_login_group",
    "oidc_session_ttl_s",
    "entities",
)
_TWILIO_KEYS = ("ACCOUNT_SID", "AUTH_TOKEN", "API_URL", "MESSAGING_SERVICE_SID", "FROM_NUMBERS")
DEFAULT_WORKERS = 1
DEFAULT_CAPTURE_SLOTS = 16


@dataclass(frozen=True)
class Settings:
    """The service's configuration; see the module docstring for where each value comes from.

    Attributes:
        data_dir: where the embedded backends keep their files.
        broker_url: the job broker (``memory://`` or ``redis://…``).
        database_url: SQLAlchemy async URL of the database.
        search_url: ``sqlite://`` (FTS5 in the SQLite database), ``postgresql://`` (full text in
            the PostgreSQL database) or ``http(s)://…`` (Elasticsearch).
        blobs_url: where audio is kept (``file://<dir>``).
        asr_url: the ASR engine (``faster-whisper://tiny.en``).
        api_token: an admin token accepted as given ("" when unset).
        url_allowlist: CIDRs and hosts untrusted URLs may reach although not public.
        keep_audio: sessions keep their captured audio by default.
        asr_workers: segments of one session transcribed at once.
        public_url: base URL of the console for links in search hits ("" → relative links).
        workers: embedded job workers ``katopotato serve`` runs (0: the API only; the jobs then
            run on ``katopotato worker`` processes sharing a Redis broker).
        capture_slots: sessions the embedded workers capture at once.
        partials: capture instances draft interim text while a client follows it (SSE
            ``?partials=1``); off saves those decodes.
        entities_url: how entities (facets of an Elasticsearch index) are found: ``rules://``,
            ``comprehend://REGION`` (AWS Comprehend) or ``none://``.
        docsweb: settings of the transcript sinks (Google credentials and endpoints).
        oidc: the OIDC provider trusted for sign-in and bearer JWTs (off unless an issuer is set).
        sms: the SMS plugin's Twilio settings from ``COUCHPOTATO_TWILIO_*`` ({} when none is set).
        config_file: the TOML file read, if any.
    """

    data_dir: Path
    broker_url: str = "memory://"
    database_url: str = ""
    search_url: str = ""
    blobs_url: str = ""
    asr_url: str = f"faster-whisper://{DEFAULT_MODEL}"
    api_token: str = ""
    url_allowlist: str = ""
    keep_audio: bool = True
    asr_workers: int = DEFAULT_ASR_WORKERS
    public_url: str = ""
    workers: int = DEFAULT_WORKERS
    capture_slots: int = DEFAULT_CAPTURE_SLOTS
    partials: bool = True
    entities_url: str = "rules://"
    docsweb: DocsWebSettings = field(default_factory=DocsWebSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    sms: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None

    def __post_init__(self) -> None:
        data = self.data_dir
        if self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, not {self.workers}")
        if self.capture_slots < 1:
            raise ConfigError(f"capture_slots must be at least 1, not {self.capture_slots}")
        if self.public_url and not self.docsweb.console_url:
            object.__setattr__(self, "docsweb", replace(self.docsweb, console_url=self.public_url))
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{data / DATABASE_FILE}")
        if not self.blobs_url:
            object.__setattr__(self, "blobs_url", f"file://{data / 'blobs'}")
        if not self.search_url:
            object.__setattr__(self, "search_url", "sqlite://" if self.database_is_sqlite else "postgresql://")
        if self.asr_workers < 1:
            raise ConfigError(f"asr_workers must be at least 1, not {self.asr_workers}")
        db_scheme = urlsplit(self.database_url).scheme
        if db_scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ConfigError(
                f"COUCHPOTATO_DATABASE={self.database_url!r}: use sqlite+aiosqlite:///PATH "
                "or postgresql+asyncpg://USER@HOST/DB"
            )
        search = urlsplit(self.search_url).scheme
        if search == "sqlite" and not self.database_is_sqlite:
            raise ConfigError("COUCHPOTATO_SEARCH=sqlite:// (FTS5) needs a SQLite COUCHPOTATO_DATABASE")
        if search in ("postgres", "postgresql") and self.database_is_sqlite:
            raise ConfigError("COUCHPOTATO_SEARCH=postgresql:// needs a PostgreSQL COUCHPOTATO_DATABASE")
        if search not in ("sqlite", "postgres", "postgresql", "http", "https"):
            raise ConfigError(
                f"COUCHPOTATO_SEARCH={self.search_url!r}: use sqlite://, postgresql:// or an "
                "Elasticsearch http(s):// URL"
            )
        if urlsplit(self.entities_url).scheme not in ("rules", "comprehend", "none"):
            raise ConfigError(f"COUCHPOTATO_ENTITIES={self.entities_url!r}: use rules://, comprehend://REGION or none://")
        if self.public_url and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise ConfigError(f"COUCHPOTATO_PUBLIC_URL={self.public_url!r} is not an http(s) URL")

    @property
    def database_is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def blobs_dir(self) -> Path | None:
        """The directory of a ``file://`` blob store, None for other stores."""
        parts = urlsplit(self.blobs_url)
        return Path(parts.netloc + parts.path) if parts.scheme == "file" else None

    def core(self) -> CoreSettings:
        """The core's settings (URL guard, ASR engine) as this service sees them."""
        return CoreSettings(url_allowlist=self.url_allowlist, asr_url=self.asr_url)

    @property
    def broker_is_shared(self) -> bool:
        """The broker is reachable from other processes (Redis), not this process's memory."""
        return not self.broker_url.startswith("memory:")

    def plugin_settings(self) -> dict[str, dict[str, Any]]:
        """Settings of the built-in plugins, the one place they are derived from the service's:
        the service's embedded workers run with them, and ``katopotato worker`` takes them as its
        defaults (``--setting`` overrides)."""
        model = self.core().asr_model()
        sms = {"sms": {"public_url": self.public_url, **self.sms}} if self.sms else {}
        return {
            **sms,
            "core": {"url_allowlist": self.url_allowlist, "asr_model": model},
            "transcription": {
                "url_allowlist": self.url_allowlist,
                "asr_model": model,
                # segment audio stays in the blob store until the session's runner has kept (or
                # dropped) it: see katopotato/distributed.py
                "keep_audio": True,
                "asr_threads": self.asr_workers,
                "partials": self.partials,
            },
        }

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, config: Path | str | None = None) -> Settings:
        """Defaults, then the TOML file (``config`` or ``$COUCHPOTATO_CONFIG``), then the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = Path(config) if config else (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
        if path is not None:
            values.update(_read_toml(path))
        for key in _KEYS:
            raw = env.get(ENV_PREFIX + key.upper())
            if raw is not None and raw != "":
                values[key] = raw
            elif key == "url_allowlist" and raw == "":
                values[key] = ""  # explicitly empty: nothing beyond public addresses
        data_dir = Path(str(values.pop("data_dir", "") or _default_data_dir(env))).expanduser()
        return cls(
            data_dir=data_dir,
            broker_url=str(values.get("broker", "memory://")),
            database_url=str(values.get("database", "")),
            search_url=str(values.get("search", "")),
            blobs_url=str(values.get("blobs", "")),
            asr_url=str(values.get("asr", "")) or f"faster-whisper://{DEFAULT_MODEL}",
            api_token=str(values.get("api_token", "")),
            url_allowlist=_allowlist(values.get("url_allowlist", "")),
            keep_audio=_bool("keep_audio", values.get("keep_audio", True)),
            asr_workers=_int("asr_workers", values.get("asr_workers", DEFAULT_ASR_WORKERS)),
            public_url=str(values.get("public_url", "")).rstrip("/"),
            workers=_int("workers", values.get("workers", DEFAULT_WORKERS)),
            capture_slots=_int("capture_slots", values.get("capture_slots", DEFAULT_CAPTURE_SLOTS)),
            partials=_bool("partials", values.get("partials", True)),
            entities_url=str(values.get("entities", "")) or "rules://",
            docsweb=DocsWebSettings.from_env(env),
            oidc=_oidc(values),
            sms={k.lower(): v for k in _TWILIO_KEYS if (v := env.get(f"{ENV_PREFIX}TWILIO_{k}", ""))},
            config_file=path,
        )


def _oidc(values: Mapping[str, Any]) -> OidcSettings:
    scopes = values.get("oidc_group_scopes", "")
    if isinstance(scopes, Mapping):  # TOML: a table of group = "scope,scope"
        scopes = ";".join(f"{g}={v if isinstance(v, str) else ','.join(v)}" for g, v in scopes.items())
    domains = values.get("oidc_allowed_domains", "")
    if isinstance(domains, str):
        domains = [d.strip() for d in domains.split(",")]
    try:
        ttl = float(values.get("oidc_session_ttl_s", DEFAULT_SESSION_TTL_S))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"oidc_session_ttl_s must be seconds, not {values['oidc_session_ttl_s']!r}") from e
    return OidcSettings(
        issuer=str(values.get("oidc_issuer", "")),
        audience=str(values.get("oidc_audience", "")),
        client_id=str(values.get("oidc_client_id", "")),
        client_secret=str(values.get("oidc_client_secret", "")),
        group_scopes=parse_group_scopes(str(scopes)),
        groups_claim=str(values.get("oidc_groups_claim", "") or DEFAULT_GROUPS_CLAIM),
        allowed_domains=tuple(d for d in (str(x).strip() for x in domains) if d),
        first_login_group=str(values.get("oidc_first_login_group", "")),
        session_ttl_s=ttl,
    )


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "share")
    return Path(base) / "couchpotato"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"settings file {path} does not exist") from e
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read settings file {path}: {e}") from e
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"settings file {path}: unknown keys {', '.join(unknown)}; known: {', '.join(_KEYS)}")
    return data


def _allowlist(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, not {value!r}")


def _int(key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key} must be an integer, not {value!r}") from e


__all__ = ["Settings"]
