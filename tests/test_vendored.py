"""The vendored upload clients are exactly the pinned npm packages' files.

frontend/scripts/vendor.mjs copies them and writes a manifest.json beside the
copies in each destination: the static vendor folder (what every site serves:
flow.js, resumable.js, and Uppy's all-in-one bundle for uploads straight into
the bucket through the site's Companion-compatible routes) and the tests'
assets (tus-js-client, which only a test loads). These tests catch a hand
edit, a stale copy after a version bump, or a file nobody listed.
"""

import fnmatch
import hashlib
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONTEND_DIR = REPO_ROOT / "frontend"
NODE_MODULES = FRONTEND_DIR / "node_modules"
TEMPLATE_DIR = REPO_ROOT / "{{cookiecutter.project_slug}}"
# Each destination of vendor.mjs, and the libraries it must hold.
DESTINATIONS = {
    TEMPLATE_DIR / "uploads" / "static" / "uploads" / "vendor": ["flow.js", "resumable.js", "uppy"],
    TEMPLATE_DIR / "uploads" / "tests" / "assets": ["tus-js-client"],
}
MANIFEST_NAME = "manifest.json"

EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
SOURCE_MAP_COMMENT = re.compile(rb"^//# sourceMappingURL=(\S+)\s*$", re.MULTILINE)


def _read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


MANIFESTS = {folder: _read_json(folder / MANIFEST_NAME) for folder in DESTINATIONS}
LIBRARIES = [
    (folder, lib, info)
    for folder, manifest in MANIFESTS.items()
    for lib, info in sorted(manifest["libraries"].items())
]
FILES = [(folder, info, entry) for folder, _, info in LIBRARIES for entry in info["files"]]
FILE_IDS = [entry["path"] for _, _, entry in FILES]
FOLDER_IDS = [folder.relative_to(TEMPLATE_DIR).as_posix() for folder in DESTINATIONS]


@pytest.mark.parametrize("folder", DESTINATIONS, ids=FOLDER_IDS)
def test_manifest_is_stable_json(folder):
    # vendor.mjs writes sorted, two-space JSON with a trailing newline, so a
    # rerun gives no diff; anything else means it was edited by hand.
    expected = json.dumps(MANIFESTS[folder], indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert (folder / MANIFEST_NAME).read_text(encoding="utf-8") == expected


@pytest.mark.parametrize(("folder", "expected"), DESTINATIONS.items(), ids=FOLDER_IDS)
def test_each_library_sits_where_it_is_used(folder, expected):
    # The site serves flow.js, resumable.js and Uppy; tus-js-client is a test asset.
    libraries = MANIFESTS[folder]["libraries"]
    assert sorted(libraries) == expected
    for lib, info in libraries.items():
        assert info["files"], f"{lib} lists no files"
        paths = [entry["path"] for entry in info["files"]]
        assert paths == sorted(paths), f"{lib}: files are not sorted"
        assert all(path.startswith(f"{lib}/") for path in paths), f"{lib}: file outside its folder"


@pytest.mark.parametrize(("folder", "info", "entry"), FILES, ids=FILE_IDS)
def test_listed_file_matches_its_hash(folder, info, entry):
    path = folder / entry["path"]
    assert path.is_file(), f"{entry['path']} is listed in {MANIFEST_NAME} but missing"
    assert path.stat().st_size == entry["size"], f"{entry['path']} has the wrong size"
    assert _sha256(path) == entry["sha256"], f"{entry['path']} differs from its manifest hash"


@pytest.mark.parametrize("folder", DESTINATIONS, ids=FOLDER_IDS)
def test_every_vendored_file_is_listed(folder):
    on_disk = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.name != MANIFEST_NAME
    }
    listed = {entry["path"] for f, _, entry in FILES if f == folder}
    assert not on_disk - listed, f"not in {MANIFEST_NAME}: {sorted(on_disk - listed)}"
    assert not listed - on_disk, f"listed but missing: {sorted(listed - on_disk)}"


@pytest.mark.parametrize(
    ("folder", "lib"),
    [(folder, lib) for folder, lib, _ in LIBRARIES],
    ids=[lib for _, lib, _ in LIBRARIES],
)
def test_each_library_keeps_its_licence(folder, lib):
    assert (folder / lib / "LICENSE").is_file()


@pytest.mark.parametrize(
    ("folder", "entry"),
    [(folder, entry) for folder, _, entry in FILES if entry["path"].endswith((".js", ".mjs"))],
    ids=[path for path in FILE_IDS if path.endswith((".js", ".mjs"))],
)
def test_source_maps_named_by_a_bundle_are_vendored(folder, entry):
    # Django's ManifestStaticFilesStorage (WhiteNoise's too) fails
    # collectstatic when a sourceMappingURL names a file that is not there.
    js = folder / entry["path"]
    for url in SOURCE_MAP_COMMENT.findall(js.read_bytes()):
        url = url.decode()
        if url.startswith("data:"):
            continue
        assert (js.parent / url).is_file(), f"{entry['path']} names {url}, which is not vendored"


def test_versions_match_the_exact_pins():
    package = _read_json(FRONTEND_DIR / "package.json")
    lock = _read_json(FRONTEND_DIR / "package-lock.json")
    pins = {**package.get("dependencies", {}), **package.get("devDependencies", {})}
    lock_root = lock["packages"][""]
    lock_pins = {**lock_root.get("dependencies", {}), **lock_root.get("devDependencies", {})}

    for _, lib, info in LIBRARIES:
        name, version = info["npm"], info["version"]
        assert EXACT_VERSION.match(pins[name]), f"{name} is not pinned exactly: {pins[name]!r}"
        assert version == pins[name], (
            f"{lib}: manifest has {version}, package.json pins {pins[name]}"
        )
        assert lock_pins[name] == pins[name], f"{name}: package-lock.json is out of date"
        locked = lock["packages"][f"node_modules/{name}"]
        assert locked["version"] == version, f"{lib}: package-lock.json has {locked['version']}"
        assert locked["integrity"] == info["integrity"], f"{lib}: tarball integrity differs"


@pytest.mark.parametrize(("folder", "info", "entry"), FILES, ids=FILE_IDS)
def test_copy_is_byte_for_byte_the_package_file(folder, info, entry):
    if not NODE_MODULES.is_dir():
        pytest.skip("frontend/node_modules is not installed (run `npm ci` in frontend/)")
    if entry.get("generated"):
        pytest.skip(f"{entry['path']} was written from package.json, not copied")
    package_dir = NODE_MODULES.joinpath(*info["npm"].split("/"))
    installed = _read_json(package_dir / "package.json")["version"]
    assert installed == info["version"], (
        f"node_modules has {info['npm']} {installed}; run `npm ci` in frontend/"
    )
    source = package_dir / entry["source"]
    assert source.is_file(), f"{info['npm']} no longer ships {entry['source']}"
    assert (folder / entry["path"]).read_bytes() == source.read_bytes()


def test_cookiecutter_copies_the_vendored_files_without_rendering():
    # tus.min.js contains "{{", which Jinja would choke on. Cookiecutter matches
    # _copy_without_render globs against paths relative to the inside of
    # {{cookiecutter.project_slug}}/, trying each folder on the way down and
    # then the file itself.
    cookiecutter_json = REPO_ROOT / "cookiecutter.json"
    if not cookiecutter_json.is_file():
        pytest.skip("cookiecutter.json does not exist yet")
    patterns = _read_json(cookiecutter_json).get("_copy_without_render", [])

    def copied_verbatim(relative):
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(fnmatch.fnmatch(c, p) for c in candidates for p in patterns)

    rendered = [
        path.relative_to(TEMPLATE_DIR).as_posix()
        for folder in DESTINATIONS
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not copied_verbatim(path.relative_to(TEMPLATE_DIR).as_posix())
    ]
    assert not rendered, f"_copy_without_render does not cover: {rendered}"
