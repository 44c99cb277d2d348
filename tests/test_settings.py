"""The settings tree: frozen, read once where a guard or a server is built, and passed down from there."""

from __future__ import annotations

import dataclasses

import pytest

import railguard
from railguard import config
from railguard.config import MEDIA_LIMITS, CoreSettings, MediaSettings, Settings
from railguard.errors import ConfigError
from railguard.guards.embedded import EmbeddedGuard


def _embedded_inside(guard) -> EmbeddedGuard:
    """The embedded guard under load_guard()'s media and agent wrappers."""
    while not isinstance(guard, EmbeddedGuard):
        guard = guard.inner
    return guard


def test_the_settings_tree_is_frozen():
    tree = Settings.from_env()
    assert isinstance(tree.core, CoreSettings) and isinstance(tree.media, MediaSettings) and tree.server is None
    for record, name in ((tree, "core"), (tree.core, "threads"), (tree.media, "max_image_bytes")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, None)


def test_a_bad_variable_is_a_config_error_naming_it(monkeypatch):
    for name, value, message in (("RAILGUARD_THREADS", "two", "RAILGUARD_THREADS must be a whole number"),
                                 ("RAILGUARD_BATCH_SIZE", "0", "RAILGUARD_BATCH_SIZE must be at least 1"),
                                 ("RAILGUARD_MAX_AUDIO_SECONDS", "0", "RAILGUARD_MAX_AUDIO_SECONDS must be above 0"),
                                 ("RAILGUARD_OCR_ANGLE", "maybe", "RAILGUARD_OCR_ANGLE must be true or false")):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(ConfigError, match=message):
                Settings.from_env()
            with pytest.raises(ConfigError, match=name):
                railguard.load_guard("embedded")


def test_a_built_guard_keeps_the_settings_it_was_built_with(monkeypatch):
    monkeypatch.setenv("RAILGUARD_BATCH_SIZE", "7")
    monkeypatch.setenv("RAILGUARD_MAX_AUDIO_SECONDS", "1.5")
    guard = railguard.load_guard("embedded")
    monkeypatch.setenv("RAILGUARD_BATCH_SIZE", "9")
    monkeypatch.setenv("RAILGUARD_MAX_AUDIO_SECONDS", "99")
    assert guard.settings.max_audio_seconds == 1.5  # the media wrapper's limits
    embedded = _embedded_inside(guard)
    assert embedded.settings.batch_size == 7 and embedded.encoder.batch_size == 7


def test_settings_given_to_load_guard_reach_every_tier_and_the_environment_is_read_once(monkeypatch):
    reads: list[str] = []
    for record in (CoreSettings, MediaSettings):
        real = record.from_env
        monkeypatch.setattr(record, "from_env", classmethod(lambda cls, real=real: reads.append(cls.__name__)
                                                             or real()))
    guard = railguard.load_guard("cascade:embedded>embedded")
    assert sorted(reads) == ["CoreSettings", "MediaSettings"]  # once, for both tiers and the media wrapper
    reads.clear()
    tree = Settings(core=CoreSettings(batch_size=5), media=MediaSettings(max_image_bytes=1234))
    guard = railguard.load_guard("cascade:embedded>embedded", settings=tree)
    assert reads == []
    assert guard.settings is tree.media
    assert [t.inner.settings.batch_size for t in guard.inner.tiers] == [5, 5]


def test_server_settings_hold_the_media_limits_as_one_media_record(monkeypatch, tmp_path):
    from railguard.server import ServerSettings

    assert not (set(MEDIA_LIMITS) | {f.name for f in dataclasses.fields(MediaSettings)}) & set(
        ServerSettings.model_fields)  # no media field repeated
    monkeypatch.setenv("RAILGUARD_MAX_IMAGE_BYTES", "4096")
    monkeypatch.setenv("RAILGUARD_OCR_SIDE", "512")
    path = tmp_path / "server.yaml"
    path.write_text("max_image_bytes: 1000\nmax_audio_seconds: 2.5\n")
    s = ServerSettings.load(path, max_image_pixels=500)
    assert isinstance(s.media, MediaSettings)
    assert (s.media.max_image_bytes, s.media.max_image_pixels, s.media.max_audio_seconds) == (4096, 500, 2.5)
    assert s.media.ocr_side == 512  # the readers' settings come from the environment, read once here
    assert s.describe()["max_image_bytes"] == 4096 and "media" not in s.describe()
    monkeypatch.setenv("RAILGUARD_MAX_IMAGE_BYTES", "0")
    with pytest.raises(ConfigError, match="max_image_bytes: Input should be greater than or equal to 1"):
        ServerSettings.load()


def test_a_server_keeps_the_settings_it_was_built_with(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient
    from server_support import FakeGuard, settings

    from railguard.server import create_app

    monkeypatch.setenv("RAILGUARD_MAX_IMAGE_BYTES", "2048")
    monkeypatch.setenv("RAILGUARD_THREADS", "3")
    app = create_app(settings(tmp_path), guard=FakeGuard())
    monkeypatch.setenv("RAILGUARD_MAX_IMAGE_BYTES", "9999")
    monkeypatch.setenv("RAILGUARD_THREADS", "5")
    with TestClient(app):
        runtime = app.state.runtime
        assert runtime.tree.core.threads == 3 and runtime.tree.server is runtime.settings
        assert runtime.settings.media.max_image_bytes == 2048 and runtime.tree.media is runtime.settings.media
        assert runtime.default.guard.settings.max_image_bytes == 2048


def test_the_media_settings_module_is_the_config_record():
    from railguard.media import MediaSettings as from_media
    from railguard.media.settings import MediaSettings as old_path

    assert from_media is old_path is config.MediaSettings


def test_a_batch_job_builds_its_guard_with_the_settings_read_when_the_job_starts(monkeypatch):
    # what each Ray actor calls: it carries the job's settings, not the environment of the actor's process
    import pickle

    from railguard.batch.local import guard_factory

    monkeypatch.setenv("RAILGUARD_BATCH_SIZE", "6")
    factory = pickle.loads(pickle.dumps(guard_factory("embedded")))
    monkeypatch.setenv("RAILGUARD_BATCH_SIZE", "11")
    assert _embedded_inside(factory()).settings.batch_size == 6
    given = Settings(core=CoreSettings(batch_size=4))
    assert _embedded_inside(guard_factory("embedded", settings=given)()).settings.batch_size == 4
