"""The file-SD writer (cockpit/adapters/prometheus/targets.py): what Prometheus reads to find
an environment's replicas, labelled so a query can select a track."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cockpit.adapters.prometheus.targets import TargetError, split_target, target_groups, write_targets
from cockpit.model import Track

STABLE_URLS = ["http://127.0.0.1:41001/metrics", "http://127.0.0.1:41002/metrics"]
CANARY_URLS = ["http://127.0.0.1:41003/metrics"]
VERSIONS = {Track.STABLE: "1.0.0", Track.CANARY: "1.1.0"}


def read(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_one_group_per_track_with_the_four_labels_and_the_metrics_path(tmp_path: Path) -> None:
    path = tmp_path / "sd" / "production.json"
    write_targets(path, "shop", "production", {Track.STABLE: STABLE_URLS, Track.CANARY: CANARY_URLS}, VERSIONS)
    assert read(path) == [
        {
            "targets": ["127.0.0.1:41001", "127.0.0.1:41002"],
            "labels": {
                "service": "shop",
                "env": "production",
                "track": "stable",
                "version": "1.0.0",
                "__metrics_path__": "/metrics",
            },
        },
        {
            "targets": ["127.0.0.1:41003"],
            "labels": {
                "service": "shop",
                "env": "production",
                "track": "canary",
                "version": "1.1.0",
                "__metrics_path__": "/metrics",
            },
        },
    ]


def test_a_track_without_replicas_has_no_group_and_an_unknown_version_no_label() -> None:
    groups = target_groups("shop", "dev", {Track.STABLE: STABLE_URLS, Track.CANARY: []}, {})
    assert [g["labels"] for g in groups] == [
        {"service": "shop", "env": "dev", "track": "stable", "__metrics_path__": "/metrics"}
    ]


def test_other_paths_and_https_get_their_own_group() -> None:
    groups = target_groups(
        "shop",
        "dev",
        {Track.STABLE: ["http://10.0.0.1:80/metrics", "https://app.example/stats/prom", "http://10.0.0.2/metrics"]},
        {Track.STABLE: "1.0.0"},
    )
    assert [(g["targets"], g["labels"]["__metrics_path__"], g["labels"].get("__scheme__")) for g in groups] == [
        (["10.0.0.1:80", "10.0.0.2:80"], "/metrics", None),
        (["app.example:443"], "/stats/prom", "https"),
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9100/metrics", ("http", "127.0.0.1:9100", "/metrics")),
        ("http://host", ("http", "host:80", "/metrics")),
        ("https://host/x", ("https", "host:443", "/x")),
        ("http://[::1]:8080/metrics", ("http", "[::1]:8080", "/metrics")),
    ],
)
def test_split_target(url: str, expected: tuple[str, str, str]) -> None:
    assert split_target(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://host/metrics", "http:// or https://"),
        ("127.0.0.1:9100/metrics", "http:// or https://"),
        ("http:///metrics", "no host"),
        ("http://host:99999/metrics", "(?i)port out of range"),
        ("http://host/metrics?format=text", "query"),
    ],
)
def test_a_url_prometheus_cannot_scrape_is_refused_by_name(url: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=says) as caught:
        write_targets(tmp_path / "dev.json", "shop", "dev", {Track.STABLE: [url]}, {})
    assert url in str(caught.value)
    assert not (tmp_path / "dev.json").exists()


def test_the_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    write_targets(path, "shop", "dev", {Track.STABLE: STABLE_URLS}, VERSIONS)
    before = path.stat().st_ino
    write_targets(path, "shop", "dev", {Track.STABLE: STABLE_URLS, Track.CANARY: CANARY_URLS}, VERSIONS)
    # A rename puts a new inode in place: a reader sees the old file or the new, never half.
    assert path.stat().st_ino != before
    assert [g["labels"]["track"] for g in read(path)] == ["stable", "canary"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_an_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    write_targets(path, "shop", "dev", {Track.STABLE: STABLE_URLS}, VERSIONS)
    os.utime(path, (1_000_000, 1_000_000))
    inode = path.stat().st_ino
    write_targets(path, "shop", "dev", {Track.STABLE: list(STABLE_URLS)}, dict(VERSIONS))
    assert (path.stat().st_ino, path.stat().st_mtime) == (inode, 1_000_000)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dev.json"
    write_targets(path, "shop", "dev", {Track.STABLE: STABLE_URLS}, VERSIONS)
    old = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_targets(path, "shop", "dev", {Track.CANARY: CANARY_URLS}, VERSIONS)
    assert path.read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.json"]


def test_the_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "dev.json"
    write_targets(path, "shop", "dev", {Track.STABLE: STABLE_URLS}, VERSIONS)
    assert read(path)[0]["targets"] == ["127.0.0.1:41001", "127.0.0.1:41002"]
