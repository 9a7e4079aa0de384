"""What the template repository ships beside the template: CI, licence, changelog."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command_with_its_services():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert commands == ["bash scripts/test.sh -p no:cacheprovider"]
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text()
    postgres = job["services"]["postgres"]
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres["ports"] == ["5432:5432"]
    assert job["services"]["redis"]["ports"] == ["6379:6379"]


def test_licence_changelog_and_contributing_guide_are_there():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert "MIT for the template (`LICENSE`)" in (ROOT / "README.md").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(r"^## \[Unreleased\]$", changelog, re.M)
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for topic in ["bash scripts/test.sh", "npm run vendor", "UPLOADS_SCREENSHOT_DIR"]:
        assert topic in contributing


def test_both_readmes_say_windows_is_not_supported():
    for readme in [ROOT / "README.md", ROOT / "{{cookiecutter.project_slug}}/README.md"]:
        text = readme.read_text()
        assert "## Supported systems" in text, readme
        assert "Windows is not supported" in " ".join(text.split()), readme
