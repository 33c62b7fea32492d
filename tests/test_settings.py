"""The zoo's settings: one object (zoo.settings), read from the environment in one place,
changed for a block with zoo.settings.using; the library reads no ZOO_* variable itself."""

import re
from pathlib import Path

import pytest

import zoo
from zoo import settings
from zoo.errors import OptionError

pytestmark = pytest.mark.unit
ZOO = Path(zoo.__file__).parent


def test_every_variable_sets_its_field():
    environ = {"ZOO_DATA_DIR": "/d", "ZOO_NO_DOWNLOAD": "1", "ZOO_RUNS_DIR": "/r", "ZOO_PLUGINS_DIR": "/p",
               "ZOO_DISABLE_PLUGINS": "a, b", "ZOO_BUILD_TIMEOUT": "2.5", "ZOO_CACHE_DIR": "/c", "ZOO_NO_CACHE": "1",
               "ZOO_CONFIG_DIR": "/g", "ZOO_NO_FAST_PATHS": "prompt-exit"}
    chosen = settings.Settings.from_environment(environ)
    assert chosen == settings.Settings(data_dir="/d", download=False, runs_dir="/r", plugins_dir="/p",
                                       disabled_plugins=("a", "b"), build_timeout=2.5, cache_dir="/c", cache=False,
                                       config_dir="/g", no_fast_paths="prompt-exit")
    assert set(environ) == set(settings.ENVIRONMENT.values())  # the table names every variable
    assert settings.Settings.from_environment({}) == settings.Settings()
    for bad in ("inf", "0", "nan", "x", "1e9"):
        with pytest.raises(OptionError, match=rf"^ZOO_BUILD_TIMEOUT='{bad}': give a number of seconds above 0"):
            settings.Settings.from_environment({"ZOO_BUILD_TIMEOUT": bad})


def test_the_environment_is_read_again_when_it_changes_and_using_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_RUNS_DIR", str(tmp_path / "a"))
    assert settings.current().runs_dir == str(tmp_path / "a")
    monkeypatch.setenv("ZOO_RUNS_DIR", str(tmp_path / "b"))
    assert settings.current().runs_dir == str(tmp_path / "b")
    with zoo.settings.using(runs_dir=tmp_path / "c", cache=False) as inside:
        assert inside.runs_dir == str(tmp_path / "c") and settings.current().cache is False
        with settings.using(runs_dir="d"):
            assert settings.current().runs_dir == "d"
        assert settings.current().runs_dir == str(tmp_path / "c")
    assert settings.current().runs_dir == str(tmp_path / "b") and settings.current().cache is True
    with pytest.raises(OptionError, match=r"^settings has no colour; it has data_dir, "):
        with settings.using(colour="red"):
            pass
    with pytest.raises(OptionError, match=r"^build_timeout=-1: give a number of seconds above 0 and at most 86,400$"):
        with settings.using(build_timeout=-1):
            pass
    assert settings.current().runs_dir == str(tmp_path / "b")


def test_the_plugins_loaded_follow_the_settings():
    from zoo.plugins import get_zoo

    assert "speedrun" in get_zoo().architectures
    with settings.using(disabled_plugins=("speedrun",)):
        assert "speedrun" not in get_zoo().architectures and "speedrun" in get_zoo().disabled
    assert "speedrun" in get_zoo().architectures


def test_no_module_but_settings_reads_a_zoo_variable():
    reads = re.compile(r"os\.environ(\.get)?\s*[\[(]\s*[A-Z_]*ENV\b|os\.environ(\.get)?\s*[\[(]\s*['\"]ZOO_|getenv")
    found = [f"{path.relative_to(ZOO.parent)}:{n}" for path in ZOO.rglob("*.py") if path.name != "settings.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if reads.search(line)]
    assert found == []
