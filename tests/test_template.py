"""plugin-template/ and `tuspluggy plugin new`: what each kind renders, the template inside
the wheel, `copier update`, and a generated notifier receiving the events of a real server.
Installing each kind and running its own tests: test_template_install.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tuspluggy.scaffold import ScaffoldError, new_plugin, normalize_name, template_dir
from tuspluggy.testing import ServerProcess, overlay_venv, tus_upload, wait_for

ROOT = Path(__file__).resolve().parent.parent


def run(*command, cwd=None, env=None, timeout=180) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def files_of(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> str:
    return overlay_venv(tmp_path_factory.mktemp("venv") / "v")


KINDS = [("notifier", "acme-log", "tuspluggy_acme_log"), ("storage", "acme-vault", "tuspluggy_acme_vault"),
         ("info-store", "acme-ledger", "tuspluggy_acme_ledger")]


@pytest.mark.parametrize("kind, name, module", KINDS)
def test_the_template_renders_a_complete_project_of_each_kind(tmp_path, kind, name, module):
    project = new_plugin(name, kind=kind, directory=tmp_path / name, author="Ada")
    underscored = name.replace("-", "_")
    assert files_of(project) == {
        ".copier-answers.yml", ".gitignore", "README.md", "pyproject.toml", ".github/workflows/test.yml",
        f"src/{module}/__init__.py", f"tests/test_{underscored}.py",
    }
    pyproject = (project / "pyproject.toml").read_text()
    assert f'[project.entry-points.tuspluggy]\n{name} = "{module}"' in pyproject
    assert 'authors = [{ name = "Ada"' in pyproject
    workflow = (project / ".github/workflows/test.yml").read_text()
    assert "${{ matrix.python-version }}" in workflow  # GitHub's own syntax survived rendering
    answers = (project / ".copier-answers.yml").read_text()
    assert f"kind: {kind}" in answers and "_src_path:" in answers
    code = (project / "src" / module / "__init__.py").read_text()
    compile(code, "plugin", "exec")
    expected_hook = {"notifier": "tus_register_notifiers", "storage": "tus_register_storages",
                     "info-store": "tus_register_info_stores"}[kind]
    assert f"def {expected_hook}(register)" in code
    assert "{{" not in code and "{%" not in code


def test_an_upload_through_a_real_server_reaches_a_generated_notifier(tmp_path, venv):
    new_plugin("acme-audit", kind="notifier", directory=tmp_path / "audit")
    run(venv, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", tmp_path / "audit")
    events = tmp_path / "events.jsonl"
    data = tmp_path / "data"

    def recorded():
        lines = events.read_text().splitlines() if events.exists() else []
        return [json.loads(line) for line in lines]

    with ServerProcess("--hooks-acme-audit-file", str(events), "--hooks", "pre-create,post-create,post-finish",
                       data_dir=str(data), python=venv) as server:
        assert "notifier acme-audit enabled" in server.log()
        location = tus_upload(server.url, b"audited bytes", metadata={"filename": "audit.txt"})
        wait_for(lambda: "post-finish" in [r["event"] for r in recorded()], timeout=30)
    by_event = {r["event"]: r for r in recorded()}
    assert set(by_event) == {"pre-create", "post-create", "post-finish"}
    assert by_event["post-finish"]["upload_id"] == location.rsplit("/", 1)[1]
    assert by_event["post-finish"]["payload"]["upload"]["metadata"] == {"filename": "audit.txt"}


def test_plugin_new_refuses_bad_names_and_existing_directories(tmp_path):
    assert normalize_name("tuspluggy-Slack") == "slack"
    assert normalize_name("my_plugin") == "my-plugin"
    for bad in ("9lives", "has space", "-dash", "a--b", "x.y"):
        with pytest.raises(ScaffoldError):
            normalize_name(bad)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(ScaffoldError, match="not empty"):
        new_plugin("taken", directory=tmp_path / "taken")
    result = subprocess.run([sys.executable, "-m", "tuspluggy.cli", "plugin", "new", "Bad Name!"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("Error: plugin name") and "Traceback" not in result.stderr


def test_plugin_new_works_from_a_wheel(tmp_path):
    """The template ships as package data: an installed tuspluggy (not a checkout) finds it."""
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    for name in ("core", "plugins", "plugin-template"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source,
        timeout=300)
    (wheel,) = (tmp_path / "dist").glob("tuspluggy-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert (site / "tuspluggy" / "plugin_template" / "copier.yml").is_file()
    assert (site / "tuspluggy" / "plugin_template" / "project" / ".github" / "workflows" / "test.yml.jinja").is_file()
    env = {"PYTHONPATH": str(site)}  # before the editable install on sys.path
    where = run(sys.executable, "-c", "from tuspluggy.scaffold import template_dir; print(template_dir())", env=env)
    assert where.stdout.strip() == str(site / "tuspluggy" / "plugin_template")
    run(sys.executable, "-m", "tuspluggy.cli", "plugin", "new", "wheely", "--kind", "storage", cwd=tmp_path, env=env)
    assert (tmp_path / "tuspluggy-wheely" / "src" / "tuspluggy_wheely" / "__init__.py").is_file()


def test_a_generated_project_takes_in_template_changes_with_copier_update(tmp_path):
    """copier update merges a new template version into a project the author changed."""
    if not shutil.which("git"):
        pytest.skip("copier update needs git")
    # copier commits in scratch repositories too: give git an identity even where none is set.
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.org"}
    template = tmp_path / "template"
    shutil.copytree(template_dir(), template)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"]
    run(*git, "init", "-q", cwd=template)
    run(*git, "add", "-A", cwd=template)
    run(*git, "commit", "-q", "-m", "v1", cwd=template)
    run(*git, "tag", "v1.0.0", cwd=template)

    project = tmp_path / "project"
    run(sys.executable, "-m", "copier", "copy", "--defaults", "-d", "plugin_name=upd", str(template), str(project),
        env=identity)
    assert "_commit: v1.0.0" in (project / ".copier-answers.yml").read_text()
    run(*git, "init", "-q", cwd=project)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nA note of the author.\n")
    run(*git, "add", "-A", cwd=project)
    run(*git, "commit", "-q", "-m", "mine", cwd=project)

    readme_template = template / "project" / "README.md.jinja"
    readme_template.write_text("<!-- template v2 -->\n" + readme_template.read_text())
    run(*git, "commit", "-q", "-am", "v2", cwd=template)
    run(*git, "tag", "v2.0.0", cwd=template)

    run(sys.executable, "-m", "copier", "update", "--defaults", "--conflict", "inline", cwd=project, env=identity)
    text = readme.read_text()
    assert text.startswith("<!-- template v2 -->") and "A note of the author." in text
    assert "_commit: v2.0.0" in (project / ".copier-answers.yml").read_text()
