"""Settings: embedded defaults, then the TOML file, then the environment; bad values in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from katopotato.errors import ConfigError
from katopotato.settings import Settings


def test_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings.load({"COUCHPOTATO_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/couchpotato.db"
    assert s.search_url == "sqlite://" and s.broker_url == "memory://"
    assert s.blobs_url == f"file://{tmp_path}/blobs" and s.blobs_dir == tmp_path / "blobs"
    assert s.asr_url == "faster-whisper://tiny.en" and s.api_token == "" and s.keep_audio is True
    assert s.core().asr_model() == "tiny.en"
    home = Settings.load({"HOME": str(tmp_path)})
    assert home.data_dir == tmp_path / ".local/share/couchpotato"
    assert Settings.load({"XDG_DATA_HOME": "/x"}).data_dir == Path("/x/couchpotato")


def test_the_environment_overrides_the_toml_file(tmp_path: Path) -> None:
    toml = tmp_path / "kp.toml"
    toml.write_text(
        'data_dir = "/srv/kp"\napi_token = "from-file"\nurl_allowlist = ["10.0.0.0/8", "media.local"]\n'
        "keep_audio = false\nasr_workers = 3\n"
    )
    s = Settings.load({"COUCHPOTATO_CONFIG": str(toml), "COUCHPOTATO_API_TOKEN": "from-env"})
    assert s.data_dir == Path("/srv/kp") and s.api_token == "from-env" and s.config_file == toml
    assert s.url_allowlist == "10.0.0.0/8,media.local" and s.keep_audio is False and s.asr_workers == 3
    pg = Settings.load({"COUCHPOTATO_DATABASE": "postgresql+asyncpg://u@db/kp"}, config=toml)
    assert pg.search_url == "postgresql://" and not pg.database_is_sqlite
    assert Settings.load({"COUCHPOTATO_KEEP_AUDIO": "yes"}, config=toml).keep_audio is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COUCHPOTATO_DATABASE": "mysql://x"}, "use sqlite"),
        ({"COUCHPOTATO_DATABASE": "postgresql+asyncpg://u@h/d", "COUCHPOTATO_SEARCH": "sqlite://"}, "SQLite"),
        ({"COUCHPOTATO_SEARCH": "postgresql://"}, "PostgreSQL"),
        ({"COUCHPOTATO_SEARCH": "solr://x"}, "Elasticsearch"),
        ({"COUCHPOTATO_KEEP_AUDIO": "maybe"}, "true or false"),
        ({"COUCHPOTATO_ASR_WORKERS": "0"}, "at least 1"),
        ({"COUCHPOTATO_ASR_WORKERS": "two"}, "integer"),
        ({"COUCHPOTATO_PUBLIC_URL": "ftp://x"}, "http"),
        ({"COUCHPOTATO_CONFIG": "/nonexistent/kp.toml"}, "does not exist"),
    ],
)
def test_bad_settings_are_one_line_errors(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Settings.load({"COUCHPOTATO_DATA_DIR": str(tmp_path), **env})
    assert "\n" not in str(info.value)


def test_unknown_toml_keys_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "kp.toml"
    toml.write_text('databse = "sqlite+aiosqlite:///x.db"\n')
    with pytest.raises(ConfigError, match="unknown keys databse"):
        Settings.load({}, config=toml)
    toml.write_text("not toml [")
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load({}, config=toml)
