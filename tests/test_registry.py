"""The registry hands out typed adapter classes and refuses, naming the entry point, anything
that is not one; create_backend validates plan options and constructs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, DeployBackend, MetricsSource, NoOptions
from cockpit.adapters.memory import MemoryBackend, MemoryMetrics
from cockpit.plan import PlanError, parse_plan


class NotABackend:
    Options = NoOptions


class OptionsNotAModel(MemoryBackend):
    Options = dict  # type: ignore[assignment]


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry points pointing at broken targets, private to one test."""
    backends = dict(registry._BUILTIN[registry.BACKENDS_GROUP])
    backends.update(
        {
            "memory": "cockpit.adapters.memory:MemoryBackend",
            "not-a-class": "cockpit.model:NO_DATA",
            "not-a-backend": f"{__name__}:NotABackend",
            "a-source": "cockpit.adapters.memory:MemoryMetrics",
            "bad-options": f"{__name__}:OptionsNotAModel",
            "no-module": "cockpit.adapters.does_not_exist:Backend",
            "no-attribute": "cockpit.adapters.memory:Nothing",
        }
    )
    monkeypatch.setitem(registry._BUILTIN, registry.BACKENDS_GROUP, backends)
    sources = dict(registry._BUILTIN[registry.METRICS_GROUP]) | {
        "memory": "cockpit.adapters.memory:MemoryMetrics",
        "a-backend": "cockpit.adapters.memory:MemoryBackend",
    }
    monkeypatch.setitem(registry._BUILTIN, registry.METRICS_GROUP, sources)


def test_builtins_are_typed_classes() -> None:
    backend = registry.backend_class("local")
    assert issubclass(backend, DeployBackend) and issubclass(backend.Options, BaseModel)
    source = registry.metrics_source_class("scrape")
    assert issubclass(source, MetricsSource) and issubclass(source.Options, BaseModel)


def test_the_abcs_declare_options_and_construction(tmp_path: Path) -> None:
    assert DeployBackend.Options is NoOptions and MetricsSource.Options is NoOptions
    with pytest.raises(ValidationError):
        NoOptions.model_validate({"anything": 1})  # an adapter without options takes none

    class Minimal(MemoryBackend):
        __init__ = DeployBackend.__init__  # type: ignore[assignment]

    ctx = AdapterContext(service="s", env="e", run_dir=tmp_path)
    minimal = Minimal(ctx, NoOptions())
    assert minimal.ctx is ctx and minimal.options == NoOptions()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("not-a-class", "not a DeployBackend subclass"),
        ("not-a-backend", "not a DeployBackend subclass"),
        ("a-source", "not a DeployBackend subclass"),
        ("bad-options", "Options must be a pydantic model"),
        ("no-module", "cannot import cockpit.adapters.does_not_exist"),
        ("no-attribute", "has no 'Nothing'"),
    ],
)
def test_a_broken_entry_point_is_a_clear_error(fake_entry_points: None, name: str, words: str) -> None:
    with pytest.raises(registry.AdapterLoadError) as info:
        registry.backend_class(name)
    assert f"entry point {name!r} in group 'cockpit.backends'" in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, ImportError)  # what the plan loader reports as "failed to load"


def test_a_backend_is_not_a_metrics_source(fake_entry_points: None) -> None:
    expected = r"'a-backend' in group 'cockpit\.metrics_sources'.*not a MetricsSource subclass"
    with pytest.raises(registry.AdapterLoadError, match=expected):
        registry.metrics_source_class("a-backend")


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(registry.UnknownAdapter, match=r"unknown backend adapter 'nope' \(known: .*local"):
        registry.backend_class("nope")


def test_create_validates_options_then_constructs(fake_entry_points: None, tmp_path: Path) -> None:
    ctx = AdapterContext(service="shop", env="dev", run_dir=tmp_path)
    backend = registry.create_backend("memory", ctx, {"versions": ["1", "2"], "replicas": 3})
    assert isinstance(backend, MemoryBackend)
    assert backend.ctx is ctx and backend.options == MemoryBackend.Options(versions=["1", "2"], replicas=3)
    with pytest.raises(ValidationError, match="colour"):
        registry.create_backend("memory", ctx, {"colour": "blue"})
    source = registry.create_metrics_source("memory", ctx, {"split_traffic": True}, backend)
    assert isinstance(source, MemoryMetrics) and source.backend is backend and source.options.split_traffic


def test_the_plan_loader_reports_a_broken_entry_point(fake_entry_points: None) -> None:
    plan = """
[service]
name = "shop"
[[environments]]
name = "dev"
initial_version = "1"
  [environments.backend]
  adapter = "not-a-backend"
"""
    with pytest.raises(PlanError) as info:
        parse_plan(plan, "plan.toml")
    (issue,) = [str(i) for i in info.value.issues if "adapter" in str(i)]
    assert "adapter failed to load" in issue and "entry point 'not-a-backend'" in issue


def test_memory_is_not_a_user_visible_builtin() -> None:
    # Tests register it (tests/memory_backend.py); a user's `cockpit adapters` never lists it.
    out = subprocess.run(
        [sys.executable, "-m", "cockpit", "adapters"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "local" in out and "scrape" in out and "memory" not in out


def test_a_builtin_adapter_whose_extra_is_missing_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    real = importlib.import_module

    def without_requests(name: str, package: str | None = None) -> object:
        if name == "cockpit.adapters.prometheus.source":
            raise ModuleNotFoundError("No module named 'requests'", name="requests")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_requests)
    with pytest.raises(registry.AdapterLoadError, match=r"pip install 'cockpit\[prometheus\]'"):
        registry.metrics_source_class("prometheus")
