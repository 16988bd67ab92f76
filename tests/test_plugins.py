"""The plugin contract: one test per hookspec (each exercised by a test plugin), broken
plugins named instead of tracebacks, --disable-plugin, and `tuspluggy plugins`.

Entry-point plugins are made as a tiny distribution (a .dist-info folder and a module) in a
temp directory put on PYTHONPATH of a `tuspluggy` subprocess only, so nothing is installed
into the environment other test runs share.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import trio
from click.testing import CliRunner

from tuspluggy import hookimpl, hookspecs
from tuspluggy.cli import build_cli
from tuspluggy.config import Config
from tuspluggy.interfaces import HookCall, PluginContext
from tuspluggy.options import core_options
from tuspluggy.plugin_manager import PluginLoadError, call_startup, collect, make_plugin_manager, select
from tuspluggy.testing import ServerProcess, live_server
from tuspluggy.upload import Upload

TUS = {"Tus-Resumable": "1.0.0"}
HOOKSPECS = sorted(name for name, value in vars(hookspecs).items()
                   if name.startswith("tus_") and hasattr(value, "tuspluggy_spec"))


# -- helpers ---------------------------------------------------------------------------


def manager(*plugins):
    """A manager with only the given (name, plugin) pairs, and what they offer."""
    pm = make_plugin_manager(load_entrypoints=False, plugins=plugins)
    return pm, collect(pm, core_options())


def fake_distribution(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """An installed-looking distribution under `site`: importlib.metadata finds its entry
    points once `site` is on sys.path."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text("[tuspluggy]\n" + lines)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def tuspluggy(site: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
    environment = {**os.environ, "PYTHONPATH": str(site), **(env or {})}
    return subprocess.run([sys.executable, "-m", "tuspluggy.cli", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout)


def plugin_rows(site: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    result = tuspluggy(site, "plugins", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


class MemoryStorage:
    name = "memory"
    capabilities = frozenset({"termination"})

    def __init__(self) -> None:
        self.blobs: dict[str, bytearray] = {}

    async def create(self, upload: Upload) -> None:
        self.blobs[upload.id] = bytearray()

    async def open_writer(self, upload: Upload, offset: int):
        blob = self.blobs[upload.id]
        del blob[offset:]

        class Writer:
            async def write(self, data: bytes) -> None:
                blob.extend(data)

            async def commit(self) -> None:
                pass

            async def rollback(self) -> None:
                del blob[offset:]

            async def aclose(self) -> None:
                pass

        return Writer()

    async def read(self, upload: Upload, start: int, end: int):
        yield bytes(self.blobs[upload.id][start:end])

    async def concatenate(self, final, parts) -> None:
        raise NotImplementedError

    async def finish(self, upload: Upload) -> None:
        pass

    async def remove(self, upload: Upload) -> None:
        self.blobs.pop(upload.id, None)


class MemoryInfoStore:
    def __init__(self) -> None:
        self.records: dict[str, dict] = {}

    async def get(self, upload_id: str):
        record = self.records.get(upload_id)
        return Upload.from_dict(record) if record else None

    async def save(self, upload: Upload) -> None:
        self.records[upload.id] = upload.to_dict()

    async def delete(self, upload_id: str) -> None:
        self.records.pop(upload_id, None)

    async def list_ids(self):
        for upload_id in list(self.records):
            yield upload_id

    def make_locker(self):
        return None


async def upload(url: str, data: bytes) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(url, headers={**TUS, "Upload-Length": str(len(data))})
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        patched = await client.patch(location, content=data, headers={
            **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert patched.status_code == 204, patched.text
        return location


# -- one test per hook ------------------------------------------------------------------


def test_every_hookspec_has_a_test():
    """Like datasette: a new hookspec needs a test_hook_<name> here."""
    assert HOOKSPECS, "no hookspecs found"
    missing = [name for name in HOOKSPECS if f"test_hook_{name}" not in globals()]
    assert not missing


def test_hook_tus_add_options():
    class Plugin:
        @hookimpl
        def tus_add_options(self, add_option):
            add_option("demo-level", default=3, type=int, help="How much demo.")
            add_option("demo-tags", default=[], type=list, help="Demo tags.")

    pm, registry = manager(("demo", Plugin()))
    option = next(o for o in registry.options if o.name == "demo-level")
    assert option.owner == "demo" and option.default == 3
    cli = build_cli(pm, registry)
    runner = CliRunner()
    help_text = runner.invoke(cli, ["serve", "--help"], terminal_width=200).output
    assert "--demo-level" in help_text and "[plugin: demo]" in help_text and "TUSPLUGGY_DEMO_LEVEL" in help_text
    # The value reaches the factories through ctx.config, typed, from a flag or the environment.
    seen = {}

    class Seer:
        @hookimpl
        def tus_register_notifiers(self, register):
            def factory(ctx: PluginContext):
                seen.update(level=ctx.config.demo_level, tags=ctx.config.demo_tags)
                return None

            register("seer", factory)

    pm, registry = manager(("demo", Plugin()), ("seer", Seer()))
    config = Config.from_options(registry.options, demo_level="7", demo_tags="a,b")
    registry.notifiers["seer"](PluginContext(config=config))
    assert seen == {"level": 7, "tags": ["a", "b"]}


async def test_hook_tus_register_storages(tmp_path):
    storage = MemoryStorage()

    class Plugin:
        @hookimpl
        def tus_register_storages(self, register):
            register("memory", lambda ctx: storage)

    async with live_server(plugins=[("memory-plugin", Plugin())], storage="memory", data_dir=str(tmp_path),
                           info_dir=str(tmp_path)) as url:
        location = await upload(url, b"kept in memory")
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(location)).content == b"kept in memory"
    assert list(storage.blobs.values()) == [bytearray(b"kept in memory")]


async def test_hook_tus_register_info_stores(tmp_path):
    store = MemoryInfoStore()

    class Plugin:
        @hookimpl
        def tus_register_info_stores(self, register):
            register("memory", lambda ctx: store)

    async with live_server(plugins=[("memory-info", Plugin())], info_storage="memory", data_dir=str(tmp_path)) as url:
        location = await upload(url, b"12345")
        async with httpx.AsyncClient(timeout=30) as client:
            head = await client.head(location, headers=TUS)
    assert head.headers["Upload-Offset"] == "5"
    (record,) = store.records.values()
    assert record["offset"] == 5
    assert not list(tmp_path.glob("*.info"))


async def test_a_patch_reads_its_record_once_and_saves_it_once_when_it_completes(tmp_path):
    # The hot path of a small upload: no pre-access hook, so no extra read before the
    # lock; the completing PATCH writes its finished record once, not progress then finish.
    class CountingStore(MemoryInfoStore):
        gets = saves = 0

        async def get(self, upload_id):
            CountingStore.gets += 1
            return await super().get(upload_id)

        async def save(self, upload):
            CountingStore.saves += 1
            await super().save(upload)

    store = CountingStore()

    class Plugin:
        @hookimpl
        def tus_register_info_stores(self, register):
            register("counting", lambda ctx: store)

    async with live_server(plugins=[("counting-info", Plugin())], info_storage="counting", data_dir=str(tmp_path)) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            location = (await client.post(url, headers={**TUS, "Upload-Length": "5"})).headers["Location"]
            CountingStore.gets = CountingStore.saves = 0
            patched = await client.patch(location, content=b"12345", headers={
                **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert patched.status_code == 204
    assert (CountingStore.gets, CountingStore.saves) == (1, 1)


async def test_hook_tus_register_notifiers(tmp_path):
    calls: list[HookCall] = []

    class RecordingNotifier:
        name = "recorder"
        can_reject = True

        async def notify(self, call: HookCall):
            calls.append(call)
            return None

    class Plugin:
        @hookimpl
        def tus_register_notifiers(self, register):
            register("recorder", lambda ctx: RecordingNotifier())
            register("unconfigured", lambda ctx: None)  # stays off

    async with live_server(plugins=[("recorder", Plugin())], data_dir=str(tmp_path), info_dir=str(tmp_path),
                           hooks=["pre-create", "post-create", "post-receive", "post-finish"]) as url:
        location = await upload(url, b"abc")
        with trio.fail_after(30):
            while "post-finish" not in [c.event for c in calls]:
                await trio.sleep(0.05)
    events = [c.event for c in calls]
    assert events[0] == "pre-create" and "post-finish" in events
    finish = next(c for c in calls if c.event == "post-finish")
    assert finish.upload_id == location.rsplit("/", 1)[1]
    assert json.loads(finish.body)  # the formatted payload
    assert finish.request.method == "PATCH"


async def test_hook_tus_startup(tmp_path):
    contexts = []

    class Plugin:
        @hookimpl
        def tus_startup(self, ctx):
            contexts.append(ctx)

    async with live_server(plugins=[("starter", Plugin())], data_dir=str(tmp_path), info_dir=str(tmp_path)):
        pass
    (ctx,) = contexts
    assert isinstance(ctx, PluginContext)
    assert ctx.config.data_dir == str(tmp_path)
    assert ctx.aio is not None  # the asyncio portal is running for plugins to use


def test_hookimpls_may_take_a_subset_of_the_arguments():
    sig = {name: list(inspect.signature(getattr(hookspecs, name)).parameters) for name in HOOKSPECS}
    assert all(len(params) == 1 for params in sig.values())  # keyword calls: each hook has one argument

    class Plugin:
        @hookimpl
        def tus_startup(self):
            Plugin.called = True

    pm, _ = manager(("no-args", Plugin()))
    call_startup(pm, ctx=None)
    assert Plugin.called


# -- broken plugins, in-process ----------------------------------------------------------


def test_a_misspelled_hook_marks_the_plugin_broken_and_names_the_hook():
    class Plugin:
        @hookimpl
        def tus_register_storage(self, register):  # missing "s"
            pass

    pm, registry = manager(("typo", Plugin()))
    (status,) = pm.broken()
    assert status.name == "typo" and "unknown hook tus_register_storage" in status.error
    assert pm.get_plugin("typo") is None


def test_an_unknown_hook_argument_marks_the_plugin_broken():
    class Plugin:
        @hookimpl
        def tus_register_storages(self, register, colour):
            pass

    pm, _ = manager(("bad-signature", Plugin()))
    (status,) = pm.broken()
    assert "colour" in status.error


def test_a_plugin_raising_in_a_hook_is_broken_and_what_it_offered_is_withdrawn():
    class Plugin:
        @hookimpl
        def tus_add_options(self, add_option):
            add_option("half-option", help="declared before the failure")

        @hookimpl
        def tus_register_storages(self, register):
            register("half", lambda ctx: None)
            raise RuntimeError("no credentials")

    pm, registry = manager(("half-done", Plugin()))
    (status,) = pm.broken()
    assert status.error == "failed in tus_register_storages: RuntimeError: no credentials"
    assert "half" not in registry.storages
    assert not [o for o in registry.options if o.owner == "half-done"]


def test_two_plugins_offering_one_name_the_second_is_broken():
    def offering(name):
        class Plugin:
            @hookimpl
            def tus_register_storages(self, register):
                register("same", lambda ctx: name)

        return Plugin()

    pm, registry = manager(("first", offering("first")), ("second", offering("second")))
    assert [s.name for s in pm.broken()] == ["second"]
    assert "already offered by plugin 'first'" in pm.broken()[0].error
    assert registry.storages["same"](None) == "first"


def test_tus_startup_raising_names_the_plugin():
    class Plugin:
        @hookimpl
        def tus_startup(self, ctx):
            raise ValueError("cannot reach the bucket")

    pm, _ = manager(("fragile", Plugin()))
    with pytest.raises(PluginLoadError, match="plugin 'fragile' failed in tus_startup: ValueError: cannot reach"):
        call_startup(pm, ctx=None)


def test_selecting_an_unknown_name_lists_what_is_installed():
    _, registry = manager()
    with pytest.raises(PluginLoadError, match="unknown storage 'nope'"):
        select(registry.storages, "storage", "nope")


# -- entry-point plugins, through the real command ------------------------------------------

GOOD = """
    from tuspluggy import hookimpl

    @hookimpl
    def tus_add_options(add_option):
        add_option("goodie-colour", default="blue", help="The colour of goodie.")

    @hookimpl
    def tus_register_storages(register):
        from tuspluggy.plugins.file_storage import FileStorage
        register("goodie", lambda ctx: FileStorage(ctx.config.data_dir))
"""


@pytest.fixture
def site(tmp_path):
    """A third-party distribution with good and broken plugins, seen only by subprocesses."""
    return fake_distribution(
        tmp_path / "site",
        "tuspluggy-testkit",
        {
            "goodie": "tp_goodie",
            "import-error": "tp_import_error",
            "misspelled": "tp_misspelled",
            "bad-signature": "tp_bad_signature",
            "raises-at-start": "tp_raises_at_start",
            "bad-factory": "tp_bad_factory",
        },
        {
            "tp_goodie": GOOD,
            "tp_import_error": "import a_module_that_does_not_exist\n",
            "tp_misspelled": """
                from tuspluggy import hookimpl

                @hookimpl
                def tus_register_notifier(register):
                    pass
            """,
            "tp_bad_signature": """
                from tuspluggy import hookimpl

                @hookimpl
                def tus_register_storages(register, bucket):
                    pass
            """,
            "tp_bad_factory": """
                from tuspluggy import hookimpl

                def build(ctx):
                    raise RuntimeError("no bucket configured")

                @hookimpl
                def tus_register_storages(register):
                    register("bad-factory", build)
            """,
            "tp_raises_at_start": """
                import os
                from tuspluggy import hookimpl

                @hookimpl
                def tus_startup(ctx):
                    if os.environ.get("TP_RAISE_AT_START"):
                        raise RuntimeError("the licence server is down")
            """,
        },
    )


def test_tuspluggy_plugins_lists_builtin_third_party_and_broken_plugins(site):
    rows = plugin_rows(site)
    assert rows["file-storage"]["builtin"] is True and rows["file-storage"]["version"]
    goodie = rows["goodie"]
    assert goodie == {
        "name": "goodie", "distribution": "tuspluggy-testkit", "version": "1.2.3", "builtin": False,
        "disabled": False, "error": None, "hooks": ["tus_add_options", "tus_register_storages"],
        "provides": ["storage:goodie"], "options": ["goodie-colour"],
    }
    assert "ModuleNotFoundError" in rows["import-error"]["error"] and "a_module_that_does_not_exist" in rows["import-error"]["error"]
    assert "unknown hook tus_register_notifier" in rows["misspelled"]["error"]
    assert "bucket" in rows["bad-signature"]["error"]
    assert rows["raises-at-start"]["error"] is None
    text = tuspluggy(site, "plugins").stdout
    assert "file-storage (built-in)" in text
    assert "import-error 1.2.3 [BROKEN: ModuleNotFoundError" in text


def test_a_third_party_plugin_options_show_in_serve_help_and_its_storage_is_selectable(site, tmp_path):
    help_text = tuspluggy(site, "serve", "--help").stdout
    assert "--goodie-colour" in help_text and "[plugin: goodie]" in help_text
    data = tmp_path / "data"
    with ServerProcess("--storage", "goodie", data_dir=str(data),
                       env={"PYTHONPATH": str(site), "TUSPLUGGY_DISABLE_PLUGINS": "import-error,misspelled,bad-signature"}) as server:
        response = httpx.post(server.url, headers={**TUS, "Upload-Length": "1"}, timeout=30)
        assert response.status_code == 201


def test_serve_names_each_broken_plugin_at_start_up_and_still_serves(site, tmp_path):
    with ServerProcess(data_dir=str(tmp_path / "data"), env={"PYTHONPATH": str(site)}) as server:
        assert httpx.options(server.url, timeout=30).status_code in (200, 204)
        log = server.log()
    assert "plugin 'import-error' (tuspluggy-testkit 1.2.3) is broken and was not loaded: ModuleNotFoundError" in log
    assert "--disable-plugin import-error" in log
    assert "plugin 'misspelled'" in log and "plugin 'bad-signature'" in log
    assert "Traceback" not in log


def test_selecting_a_storage_of_a_broken_plugin_says_which_plugin_is_broken(site, tmp_path):
    result = tuspluggy(site, "serve", "--port", "0", "--storage", "s3-of-import-error", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert "unknown storage 's3-of-import-error'" in result.stderr
    assert "import-error: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plugin_raising_at_start_up_is_a_clear_error_naming_it(site, tmp_path):
    result = tuspluggy(site, "serve", "--port", "0", "--data-dir", str(tmp_path), "--info-dir", str(tmp_path),
                       env={"TP_RAISE_AT_START": "1"})
    assert result.returncode != 0
    assert "Error: plugin 'raises-at-start' failed in tus_startup: RuntimeError: the licence server is down" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_factory_raising_while_the_server_is_built_is_a_clear_error_naming_the_plugin(site, tmp_path):
    result = tuspluggy(site, "serve", "--port", "0", "--storage", "bad-factory", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert ("Error: plugin 'bad-factory' could not build storage 'bad-factory': RuntimeError: no bucket configured"
            in result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["flag", "flags", "env"])
def test_disable_plugin_switches_a_plugin_off(site, tmp_path, how):
    if how == "flag":
        args, env = ["--disable-plugin", "goodie", "--disable-plugin", "import-error"], None
    elif how == "flags":
        args, env = ["--disable-plugins=goodie,import-error"], None
    else:
        args, env = [], {"TUSPLUGGY_DISABLE_PLUGINS": "goodie,import-error"}
    rows = plugin_rows(site, *args, env=env)
    assert rows["goodie"]["disabled"] and rows["goodie"]["provides"] == [] and rows["goodie"]["hooks"] == []
    assert rows["import-error"]["disabled"]
    help_text = tuspluggy(site, "serve", "--help", *args, env=env).stdout
    assert "--goodie-colour" not in help_text
    result = tuspluggy(site, "serve", "--port", "0", "--storage", "goodie", "--data-dir", str(tmp_path), *args, env=env)
    assert result.returncode != 0 and "unknown storage 'goodie'" in result.stderr


def test_a_disabled_broken_plugin_is_not_reported_at_start_up(site, tmp_path):
    env = {"PYTHONPATH": str(site), "TUSPLUGGY_DISABLE_PLUGINS": "import-error,misspelled,bad-signature"}
    with ServerProcess(data_dir=str(tmp_path / "data"), env=env) as server:
        pass
    assert "is broken" not in server.log()
