"""The plugin host (entry points, settings, description) and the blob stores."""

from __future__ import annotations

import socket
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from katopotato.blobs import BlobStore, FileBlobStore, blobs_from_url
from katopotato.errors import BlobNotFound, ConfigError, PluginError
from katopotato.plugin import JobContext, NoParams, Plugin
from katopotato.plugin_host import ENTRY_POINT_GROUP, PluginRegistry, load_plugins

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[str]:
    """A plugin 'installed' the way pip does it: a package and a dist-info with an entry point."""
    name = f"cp_fake_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel
            from katopotato.plugin import JobContext, NoParams, Plugin

            class Settings(BaseModel):
                greeting: str = "hello"

            class Params(BaseModel):
                who: str

            plugin = Plugin("fake", "2.0", settings=Settings)

            @plugin.job()
            async def greet(ctx: JobContext, p: Params) -> str:
                '''Greet someone.'''
                return f"{ctx.settings.greeting} {p.who}"

            plugin.schedule("hourly", "0 * * * *", "greet", {"who": "cron"})
            """
        )
    )
    dist = tmp_path / f"{name}-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nfake = {name}:plugin\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_entry_point_plugins_are_discovered(installed_plugin: str) -> None:
    registry = load_plugins(settings={"fake": {"greeting": "hi"}})
    assert {"core", "transcription", "fake"} <= {p.name for p in registry.plugins}
    assert "fake.greet" in registry.kinds()
    assert registry.validate("fake.greet", {"who": "x"}) == {"who": "x"}
    described = {d["name"]: d for d in registry.describe()}
    fake = described["fake"]
    assert fake["version"] == "2.0"
    assert fake["jobs"][0]["kind"] == "fake.greet" and fake["jobs"][0]["description"] == "Greet someone."
    assert fake["jobs"][0]["params_schema"]["required"] == ["who"]
    assert fake["schedules"] == [
        {"name": "hourly", "cron": "0 * * * *", "kind": "fake.greet", "params": {"who": "cron"}}
    ]
    # other installed plugins (vetting, …) bring their own schedules: only these two are this test's
    assert {"core.nightly_purge", "fake.hourly"} <= {s.name for s in registry.schedules()}


def test_bad_settings_and_declarations_fail_in_one_line(installed_plugin: str) -> None:
    with pytest.raises(ConfigError, match=r"settings of plugin fake: greeting: Input should be a valid string"):
        load_plugins(settings={"fake": {"greeting": 3}})
    with pytest.raises(ConfigError, match="unknown plugin"):
        load_plugins(settings={"nope": {"x": 1}})
    p = Plugin("dup", "1")
    with pytest.raises(PluginError, match="async"):
        p.job("sync", params=NoParams)(lambda ctx, params: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(PluginError, match="bad cron"):
        p.schedule("s", "not cron", "x")
    with pytest.raises(PluginError, match="bad plugin name"):
        Plugin("Bad-Name", "1")
    with pytest.raises(PluginError, match="two plugins"):
        PluginRegistry([Plugin("twice", "1"), Plugin("twice", "2")])

    async def untyped(ctx: JobContext, p: int) -> None: ...

    with pytest.raises(PluginError, match="pydantic model"):
        p.job()(untyped)


async def _exercise(store: BlobStore) -> None:
    async with store:
        assert await store.put("audio/s1/000001.s16", b"\x00\x01" * 10) == "audio/s1/000001.s16"
        await store.put("audio/s1/000002.s16", b"two")
        await store.put("transcripts/t.jsonl", b"{}\n")
        assert await store.get("audio/s1/000002.s16") == b"two"
        await store.put("audio/s1/000002.s16", b"TWO")
        assert await store.get("audio/s1/000002.s16") == b"TWO"
        listed = await store.list("audio/")
        assert [b.key for b in listed] == ["audio/s1/000001.s16", "audio/s1/000002.s16"]
        assert listed[0].size == 20 and listed[0].modified_at > 0
        assert await store.exists("transcripts/t.jsonl")
        assert await store.delete("audio/s1/000001.s16")
        assert not await store.delete("audio/s1/000001.s16")
        with pytest.raises(BlobNotFound, match=r"audio/s1/000001\.s16"):
            await store.get("audio/s1/000001.s16")
        with pytest.raises(ConfigError, match="bad blob key"):
            await store.put("../escape", b"x")


async def test_file_blob_store(tmp_path: Path) -> None:
    await _exercise(blobs_from_url(f"file://{tmp_path}/blobs"))
    assert not list((tmp_path / "blobs").rglob(".tmp-*"))
    assert isinstance(blobs_from_url(f"file://{tmp_path}"), FileBlobStore)
    with pytest.raises(ConfigError):
        blobs_from_url("ftp://x/y")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_s3_blob_store_through_boto3_against_a_local_s3_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS cannot be reached here: moto's S3 server stands in, driven by the real boto3 over HTTP."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (a dev dependency) is not installed")
    import boto3

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(k, v)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="cp-test")
        await _exercise(blobs_from_url(f"s3://cp-test/some/prefix?endpoint={endpoint}"))
        keys = [
            o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="cp-test")["Contents"]
        ]
        assert sorted(keys) == ["some/prefix/audio/s1/000002.s16", "some/prefix/transcripts/t.jsonl"]
    finally:
        server.stop()


def test_worker_command_runs_plugins_with_the_service_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``katopotato worker`` takes the built-in plugins' settings from ``Settings.plugin_settings``,
    as the service's embedded workers do; ``--setting`` overrides them."""
    import argparse

    from katopotato.commands.worker import service_registry
    from katopotato.settings import Settings

    monkeypatch.setenv("COUCHPOTATO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COUCHPOTATO_ASR_WORKERS", "3")
    monkeypatch.setenv("COUCHPOTATO_KEEP_AUDIO", "false")
    args = argparse.Namespace(setting=["core.asr_model=base.en"], plugin=[], broker=None, blobs=None)
    registry, _, _ = service_registry(args)
    service = Settings.load().plugin_settings()
    transcription = registry.settings_for("transcription")
    assert transcription is not None
    values = transcription.model_dump()
    assert values | service["transcription"] == values  # every value the service derives, as it derives it
    assert values["asr_threads"] == 3 and values["keep_audio"] is True
    core = registry.settings_for("core")
    assert core is not None and core.model_dump()["asr_model"] == "base.en"
