"""The checked rule pack kept in the user's cache folder: used only when it is exactly what
the rule files and lossdoctor's code give now, rebuilt silently otherwise."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lossdoctor.cli import app
from lossdoctor.engine import loader, pack_cache
from lossdoctor.engine.loader import builtin_rules_dir, load_rules
from lossdoctor.errors import RulePackError


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a fresh XDG cache folder for this test."""
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """Return a copy of the built-in rule pack that the test may edit."""
    return Path(shutil.copytree(builtin_rules_dir(), tmp_path / "rules"))


def _entries(home: Path) -> list[Path]:
    return sorted((home / "lossdoctor" / "rule-pack").glob("*.pickle"))


def _never_built(_files: object) -> list[object]:
    raise AssertionError("the pack was built again")


def test_a_second_load_reads_the_checked_pack_from_the_cache(cache_home, monkeypatch):
    first = load_rules()
    assert len(_entries(cache_home)) == 1
    monkeypatch.setattr(loader, "_build_rules", _never_built)
    assert load_rules() == first


def test_an_edited_rule_file_is_seen_even_with_its_size_and_time_unchanged(cache_home, pack):
    rule_file = next(pack.rglob("LD201-*.toml"))
    text = rule_file.read_text()
    before = {r.name: r for r in load_rules([pack])}["spikes"]
    stat = rule_file.stat()
    edited = text.replace(f'summary = "{before.summary}"', f'summary = "{before.summary[::-1]}"')
    assert edited != text
    assert len(edited) == len(text)
    rule_file.write_text(edited)
    os.utime(rule_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = {r.name: r for r in load_rules([pack])}["spikes"]
    assert after.summary == before.summary[::-1]
    assert len(_entries(cache_home)) == 1  # the entry was replaced, not added to


def test_a_rule_file_broken_after_caching_is_an_error(cache_home, pack):
    load_rules([pack])
    rule_file = next(pack.rglob("LD201-*.toml"))
    rule_file.write_text(rule_file.read_text().replace("code =", "code = = "))
    with pytest.raises(RulePackError, match="invalid TOML") as caught:
        load_rules([pack])
    assert caught.value.path == str(rule_file)


def test_an_added_rule_file_is_seen(cache_home, pack):
    count = len(load_rules([pack]))
    source = next(pack.rglob("LD201-*.toml"))
    text = source.read_text().replace('code = "LD201"', 'code = "LD299"')
    (source.parent / "LD299-spikes-copy.toml").write_text(
        text.replace('name = "spikes"', 'name = "spikes-copy"')
    )
    assert len(load_rules([pack])) == count + 1


def test_changed_lossdoctor_code_rebuilds_the_pack(cache_home, monkeypatch):
    load_rules()
    stamp = pack_cache.code_stamp
    monkeypatch.setattr(pack_cache, "code_stamp", lambda package: (*stamp(package), ("x", 1, 2)))
    built: list[int] = []
    build = loader._build_rules
    monkeypatch.setattr(loader, "_build_rules", lambda files: built.append(1) or build(files))
    load_rules()
    assert built == [1]


def test_the_code_stamp_follows_every_module(tmp_path):
    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    module = package / "sub" / "module.py"
    module.write_text("x = 1\n")
    (package / "README.md").write_text("not a module")
    before = pack_cache.code_stamp(package)
    assert [name for name, *_ in before] == [os.path.join("sub", "module.py")]
    os.utime(module, ns=(0, module.stat().st_mtime_ns + 1))
    assert pack_cache.code_stamp(package) != before


def test_a_damaged_entry_is_rebuilt_and_replaced(cache_home):
    first = load_rules()
    (entry,) = _entries(cache_home)
    entry.write_bytes(entry.read_bytes()[:1000])
    assert load_rules() == first
    assert entry.stat().st_size > 1000


def test_a_cache_folder_that_cannot_be_written_costs_nothing_but_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # no folder can be made below a file
    assert {r.name for r in load_rules()} >= {"spikes", "plateau"}


def test_the_cli_sees_an_edited_project_rule(cache_home, pack, tmp_path, runner, monkeypatch):
    # a project with a rule of its own, explained twice; between the two its summary changes
    project = tmp_path / "project"
    (project / "rules").mkdir(parents=True)
    own = project / "rules" / "XX201-my-spikes.toml"
    text = next(pack.rglob("LD201-*.toml")).read_text()
    text = text.replace('code = "LD201"', 'code = "XX201"')
    own.write_text(text.replace('name = "spikes"', 'name = "my-spikes"'))
    (project / "lossdoctor.toml").write_text('rule-paths = ["rules"]\n')
    monkeypatch.chdir(project)
    first = runner.invoke(app, ["rules", "explain", "my-spikes"])
    assert first.exit_code == 0, first.output
    assert "Our own words." not in first.output
    own.write_text(own.read_text().replace('summary = "', 'summary = "Our own words. '))
    second = runner.invoke(app, ["rules", "explain", "my-spikes"])
    assert second.exit_code == 0, second.output
    assert "Our own words." in second.output


def test_the_cache_keeps_the_packs_written_last(cache_home, tmp_path, monkeypatch):
    # one entry per set of rule folders: temporary ones must not pile up for ever
    monkeypatch.setattr(pack_cache, "MAX_ENTRIES", 3)
    folders = []
    for index in range(5):
        folder = tmp_path / f"pack{index}"
        shutil.copytree(builtin_rules_dir(), folder)
        folders.append(folder)
        load_rules([folder])
        entries = _entries(cache_home)
        for age, entry in enumerate(sorted(entries, key=lambda e: e.stat().st_mtime_ns)):
            os.utime(entry, ns=(0, 10**9 * (age + 1)))  # in the order written, whatever the clock
    assert len(_entries(cache_home)) == 3
    monkeypatch.setattr(loader, "_build_rules", _never_built)
    for folder in folders[-3:]:
        load_rules([folder])  # the three written last are read back


def test_a_cache_file_that_cannot_be_put_in_place_leaves_nothing_behind(tmp_path):
    """The report cache and the rule pack write through one helper: a file that cannot be
    renamed into place (here a folder stands at its path) is reported, and no temporary
    file is left in the folder."""
    from lossdoctor.cachefile import write_pickles

    (tmp_path / "entry.pickle").mkdir()
    assert write_pickles(tmp_path / "entry.pickle", {"key": 1}, [1, 2]) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.pickle"]
    assert write_pickles(tmp_path / "other.pickle", {"key": 1}) is True


# The user's cache folder is worked out without importing platformdirs where every
# platformdirs release agrees, and asked of platformdirs in every other case.
LINUX_AND_MACOS_ENVIRONMENTS = [
    {"HOME": "/home/ada"},
    {"HOME": "/home/ada/"},
    {"HOME": "/", "XDG_CACHE_HOME": ""},
    {"HOME": "/home/ada", "XDG_CACHE_HOME": "/tmp/xdg-cache"},
    {"HOME": "/home/ada", "XDG_CACHE_HOME": "/tmp/xdg cache/"},
    {"HOME": "/home/ada", "XDG_CACHE_HOME": "   "},
    {"XDG_CACHE_HOME": "/tmp/xdg-cache"},
]


def _environment(monkeypatch: pytest.MonkeyPatch, platform: str, env: dict[str, str]) -> None:
    import sys

    monkeypatch.setattr(sys, "platform", platform)
    for name in ("HOME", "XDG_CACHE_HOME", "ANDROID_DATA", "ANDROID_ROOT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("env", LINUX_AND_MACOS_ENVIRONMENTS)
@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_the_cache_folder_is_platformdirs_one(monkeypatch, platform, env):
    import platformdirs
    from platformdirs.macos import MacOS
    from platformdirs.unix import Unix

    _environment(monkeypatch, platform, env)
    kind = Unix if platform == "linux" else MacOS
    dirs = kind("lossdoctor", appauthor=False)
    # platformdirs picked this machine's class at import: the one of ``platform`` answers
    monkeypatch.setattr(platformdirs, "PlatformDirs", kind)
    assert pack_cache.user_cache_dir() == dirs.user_cache_dir
    assert pack_cache.cache_folder() == Path(dirs.user_cache_dir) / "rule-pack"


@pytest.mark.parametrize(
    ("platform", "env"),
    [
        ("win32", {"HOME": "/home/ada"}),
        ("win32", {}),
        ("linux", {}),  # no home: platformdirs looks the user up
        ("linux", {"HOME": "relative/home"}),
        ("linux", {"HOME": "/home/ada", "XDG_CACHE_HOME": "relative/cache"}),
        ("linux", {"HOME": "/data", "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system"}),
        ("darwin", {"HOME": "/Users/ada", "XDG_CACHE_HOME": "/tmp/xdg-cache"}),
        ("freebsd14", {"HOME": "/home/ada"}),
    ],
)
def test_other_cache_folders_are_asked_of_platformdirs(monkeypatch, platform, env):
    import platformdirs

    _environment(monkeypatch, platform, env)
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: f"asked {a} {k}")
    assert pack_cache.user_cache_dir() == "asked ('lossdoctor',) {'appauthor': False}"
