"""The ``tuspluggy`` command: serve, cleanup, plugins.

Plugins are loaded before the command line is parsed, so the options they contribute
appear in ``tuspluggy serve --help`` and can be set like core options.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import click
import trio

from . import __version__
from .config import Config
from .options import Option, parse_bool, parse_list
from .plugin_manager import PluginLoadError, PluginManager, Registry


class YesNo(click.ParamType):
    name = "yes|no"

    def convert(self, value, param, ctx):
        try:
            return parse_bool(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _click_option(option: Option):
    kwargs = dict(
        envvar=option.envvars,
        show_envvar=True,
        help=option.help + (f" [plugin: {option.owner}]" if option.owner != "core" else ""),
        show_default=option.default not in (None, "", [], ()),
    )
    default = option.default
    if option.type is bool:
        # Switches take a value, as Rustus's do (--behind-proxy yes); a bare flag means yes.
        kwargs.update(type=YesNo(), default=bool(default), is_flag=False, flag_value="yes")
    elif option.type is list:
        kwargs.update(type=str, default=",".join(default) if default else None, callback=lambda c, p, v: parse_list(v))
    elif option.choices:
        kwargs.update(type=click.Choice(option.choices, case_sensitive=False), default=default)
    else:
        kwargs.update(type=option.type if option.type in (int, float) else str, default=default)
    flags = [f"--{option.name}"]
    if option.name == "disable-plugins":
        flags.append("--disable-plugin")
    return click.option(*flags, option.dest, **kwargs)


def _with_options(options: list[Option]):
    def decorate(function):
        for option in reversed(options):
            function = _click_option(option)(function)
        return function

    return decorate


def _config(registry: Registry, values: dict) -> Config:
    return Config(values, registry.options)


def build_cli(pm: PluginManager, registry: Registry) -> click.Group:
    @click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
    @click.version_option(__version__, prog_name="tuspluggy")
    def cli():
        """tuspluggy: a resumable-upload server for the tus protocol 1.0.0."""

    @cli.command()
    @_with_options(registry.options)
    def serve(**values):
        """Run the tus server."""
        from .logs import setup_logging
        from .server import serve_forever

        config = _config(registry, values)
        setup_logging(config.log_level, config.log_format)
        _report_broken_plugins(pm)
        try:
            serve_forever(config, pm, registry)
        except PluginLoadError as error:
            raise click.ClickException(str(error) + _broken_hint(pm)) from None
        except KeyboardInterrupt:
            pass

    @cli.command()
    @_with_options(registry.options)
    def cleanup(**values):
        """Remove unfinished uploads whose expiration has passed, then exit."""
        from .logs import setup_logging
        from .server import running

        config = _config(registry, values)
        setup_logging(config.log_level, config.log_format)
        _report_broken_plugins(pm)
        if not config.expiration:
            raise click.ClickException("--expiration is 0 (uploads never expire): nothing to clean up")

        async def run():
            async with running(config.replace(cleanup_interval=0), pm, registry) as server:
                return await server.service.remove_expired()

        try:
            removed = trio.run(run)
        except PluginLoadError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"removed {len(removed)} expired upload(s)")
        for upload_id in removed:
            click.echo(upload_id)

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
    @click.option("--disable-plugins", "--disable-plugin", "_disabled", multiple=True,
                  help="List these entry-point plugins as disabled (read before loading, as for serve).")
    def plugins(as_json, _disabled):
        """List installed plugins, what they implement and what they provide."""
        rows = plugin_rows(pm, registry)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            state = "disabled" if row["disabled"] else ("BROKEN: " + row["error"] if row["error"] else "ok")
            tag = " (built-in)" if row["builtin"] else ""
            click.echo(f"{row['name']}{tag} {row['version'] or ''} [{state}]")
            if row["hooks"]:
                click.echo(f"  hooks:    {', '.join(row['hooks'])}")
            if row["provides"]:
                click.echo(f"  provides: {', '.join(row['provides'])}")
            if row["options"]:
                click.echo(f"  options:  {', '.join('--' + o for o in row['options'])}")

    @cli.group()
    def plugin():
        """Write your own plugin."""

    @plugin.command("new")
    @click.argument("name")
    @click.option("--kind", type=click.Choice(["notifier", "storage", "info-store"]), default="notifier",
                  show_default=True, help="What the example plugin provides.")
    @click.option("--directory", "-d", default=None,
                  help="Where to write the project [default: ./tuspluggy-NAME].")
    @click.option("--description", default=None, help="One line for the package metadata and README.")
    @click.option("--author", default=None, help="Author name for the package metadata.")
    @click.option("--email", default=None, help="Author e-mail for the package metadata.")
    def plugin_new(name, kind, directory, description, author, email):
        """Scaffold a new plugin package NAME from the bundled template (copier).

        The project gets a pyproject with the entry point, a working example, tests that
        start a real server, a README and a CI workflow. Update it later with `copier recopy`
        (or `copier update` when the template comes from git).
        """
        from .scaffold import ScaffoldError, new_plugin

        try:
            path = new_plugin(name, kind=kind, directory=directory, description=description, author=author,
                              email=email)
        except ScaffoldError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"created {path}")
        click.echo(f"next: cd {path} && pip install -e '.[test]' && pytest")

    return cli


def _report_broken_plugins(pm: PluginManager) -> None:
    """Name each plugin that could not be loaded, at start-up, in one log line each.

    The server still starts (an optional built-in whose extra is not installed must not
    stop it); what the plugin offered is missing, and selecting it fails with _broken_hint.
    """
    log = logging.getLogger("tuspluggy.plugins")
    for status in pm.broken():
        origin = f" ({status.distribution} {status.version})" if status.distribution else ""
        log.error("plugin %r%s is broken and was not loaded: %s; fix or uninstall it, or switch it off with "
                  "--disable-plugin %s", status.name, origin, status.error, status.name)


def _broken_hint(pm: PluginManager) -> str:
    broken = pm.broken()
    if not broken:
        return ""
    return " (not loaded because broken: " + "; ".join(f"{s.name}: {s.error}" for s in broken) + ")"


def plugin_rows(pm: PluginManager, registry: Registry) -> list[dict]:
    rows = []
    for status in pm.statuses:
        plugin = pm.get_plugin(status.name)
        hooks = sorted(
            caller.name for caller in pm.get_hookcallers(plugin) or []
        ) if plugin is not None else []
        provides = sorted(key for key, owner in registry.providers.items() if owner == status.name)
        options = [o.name for o in registry.options if o.owner == status.name]
        rows.append(
            {
                "name": status.name,
                "distribution": status.distribution,
                "version": status.version,
                "builtin": status.builtin,
                "disabled": status.disabled,
                "error": status.error,
                "hooks": hooks,
                "provides": provides,
                "options": options,
            }
        )
    return rows


def _disabled_from_argv(argv: list[str]) -> list[str]:
    names = parse_list(os.environ.get("TUSPLUGGY_DISABLE_PLUGINS"))
    for i, arg in enumerate(argv):
        for flag in ("--disable-plugins", "--disable-plugin"):
            if arg == flag and i + 1 < len(argv):
                names += parse_list(argv[i + 1])
            elif arg.startswith(flag + "="):
                names += parse_list(arg.split("=", 1)[1])
    return names


def main(argv: list[str] | None = None) -> None:
    from .server import load_plugins

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        pm, registry = load_plugins(_disabled_from_argv(argv))
    except PluginLoadError as error:
        click.echo(f"Error: {error}", err=True)
        click.echo("Switch the plugin off with --disable-plugin NAME or TUSPLUGGY_DISABLE_PLUGINS=NAME.", err=True)
        sys.exit(2)
    build_cli(pm, registry)(args=argv, prog_name="tuspluggy")


if __name__ == "__main__":
    main()
