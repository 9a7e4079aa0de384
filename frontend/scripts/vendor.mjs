#!/usr/bin/env node
// Copies the pinned upload clients, byte for byte, from node_modules into the
// uploads app, and records them in a manifest.json beside the copies: the
// clients the site serves go to its static vendor folder, tus-js-client (only
// a test loads it) to its tests' assets, so that no site serves it.
//
//   node scripts/vendor.mjs           write the copies and the manifest
//   node scripts/vendor.mjs --check   verify them; exit 1 listing every mismatch
//
// Plain Node with no dependencies, so it runs right after `npm ci`.

import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const FRONTEND_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO_ROOT = resolve(FRONTEND_DIR, "..");
const NODE_MODULES = join(FRONTEND_DIR, "node_modules");
const APP_DIR = join(REPO_ROOT, "{{cookiecutter.project_slug}}", "uploads");
// Where a library's copies go; each folder has its own manifest.json.
const DESTINATIONS = {
  static: join(APP_DIR, "static", "uploads", "vendor"),
  tests: join(APP_DIR, "tests", "assets"),
};
const MANIFEST_NAME = "manifest.json";
const VENDORED_LICENSE_NAME = "LICENSE";

// What each package ships for the browser: `source` is inside the package,
// `dest` inside <destination>/<dir>/. Source maps named by a copied file's
// sourceMappingURL comment are added automatically (see sourceMapsOf).
const LIBRARIES = [
  {
    dir: "flow.js",
    npm: "@flowjs/flow.js",
    destination: "static",
    // Not src/flow.js (the package's "main"): it still holds the
    // '<%= version %>' placeholder that the build fills in.
    files: [
      { source: "dist/flow.js", dest: "flow.js" },
      { source: "dist/flow.min.js", dest: "flow.min.js" },
    ],
  },
  {
    dir: "resumable.js",
    npm: "resumablejs",
    destination: "static",
    files: [{ source: "resumable.js", dest: "resumable.js" }],
  },
  {
    dir: "uppy",
    npm: "uppy",
    destination: "static",
    // The all-in-one ES module (Core, Dashboard, AwsS3 and the rest), for
    // sites that want Uppy's Dashboard uploading straight into the bucket
    // through the site's Companion-compatible routes; its CSS inlines its
    // images, so nothing else is needed.
    files: [
      { source: "dist/uppy.min.mjs", dest: "uppy.min.mjs" },
      { source: "dist/uppy.min.css", dest: "uppy.min.css" },
    ],
  },
  {
    dir: "tus-js-client",
    npm: "tus-js-client",
    destination: "tests",
    // The UMD bundle that sets window.tus; the package's lib*/ folders are
    // CommonJS/ESM modules that need a bundler.
    files: [{ source: "dist/tus.min.js", dest: "tus.min.js" }],
  },
];

// Licence file names seen in npm packages, most usual first.
const LICENSE_FILE_PATTERN = /^(un)?licen[cs]e([.-].*)?$|^copying([.-].*)?$|^mit-licen[cs]e(\..*)?$/i;

class VendorError extends Error {}

function sha256(buffer) {
  return createHash("sha256").update(buffer).digest("hex");
}

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

function toPosix(path) {
  return path.split(sep).join(posix.sep);
}

// JSON with keys sorted at every level, so reruns produce identical bytes.
function stableStringify(value) {
  const sortKeys = (v) => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sortKeys(v[k])]),
      );
    }
    return v;
  };
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

function pinnedVersions() {
  const pkg = readJson(join(FRONTEND_DIR, "package.json"));
  return { ...pkg.dependencies, ...pkg.devDependencies };
}

function lockEntry(lock, npmName) {
  const entry = lock.packages?.[`node_modules/${npmName}`];
  if (!entry) {
    throw new VendorError(`${npmName} is missing from package-lock.json; run npm install.`);
  }
  return entry;
}

// A bundle ending in "//# sourceMappingURL=x.map" makes Django's
// ManifestStaticFilesStorage (and so WhiteNoise) look for x.map during
// collectstatic and fail if it is absent, so the map must travel with it.
function sourceMapsOf(buffer) {
  const text = buffer.toString("utf8");
  const maps = [];
  for (const match of text.matchAll(/^\/\/# sourceMappingURL=(\S+)\s*$/gm)) {
    const url = match[1];
    if (!url.startsWith("data:") && !url.includes("://")) maps.push(url);
  }
  return maps;
}

function findLicense(packageDir) {
  const names = readdirSync(packageDir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && LICENSE_FILE_PATTERN.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  return names[0] ?? null;
}

function generatedLicense(lib, packageJson) {
  const licence = packageJson.license ?? JSON.stringify(packageJson.licenses ?? "UNKNOWN");
  return Buffer.from(
    `${lib.npm} ${packageJson.version} ships no licence file.\n` +
      `Its package.json declares the licence: ${licence}\n` +
      "This file was written by frontend/scripts/vendor.mjs from that field.\n",
  );
}

// Everything each destination folder should hold: one entry per file, with
// its bytes, plus the manifest built from them.
function plan() {
  if (!existsSync(NODE_MODULES)) {
    throw new VendorError("frontend/node_modules is missing; run `npm ci` in frontend/ first.");
  }
  const pins = pinnedVersions();
  const lock = readJson(join(FRONTEND_DIR, "package-lock.json"));
  const folders = Object.entries(DESTINATIONS).map(([name, root]) => ({
    name,
    root,
    outputs: new Map(),
    manifest: {
      _generated_by: "frontend/scripts/vendor.mjs; do not edit, rerun `npm run vendor`",
      libraries: {},
    },
  }));

  for (const lib of LIBRARIES) {
    const folder = folders.find((f) => f.name === lib.destination);
    if (!folder) throw new VendorError(`${lib.npm}: unknown destination ${lib.destination}.`);
    const { outputs, manifest } = folder;
    const packageDir = join(NODE_MODULES, ...lib.npm.split("/"));
    if (!existsSync(join(packageDir, "package.json"))) {
      throw new VendorError(`${lib.npm} is not installed; run \`npm ci\` in frontend/.`);
    }
    const packageJson = readJson(join(packageDir, "package.json"));
    const pin = pins[lib.npm];
    if (pin !== packageJson.version) {
      throw new VendorError(
        `${lib.npm}: package.json pins ${JSON.stringify(pin)} but ${packageJson.version} is ` +
          "installed; pin an exact version and run `npm ci`.",
      );
    }
    const locked = lockEntry(lock, lib.npm);
    if (locked.version !== packageJson.version) {
      throw new VendorError(
        `${lib.npm}: package-lock.json has ${locked.version} but ${packageJson.version} ` +
          "is installed; run `npm ci`.",
      );
    }

    const files = [];
    const add = (source, dest, bytes, generated = false) => {
      const path = posix.join(lib.dir, dest);
      outputs.set(path, bytes);
      const entry = { path, sha256: sha256(bytes), size: bytes.length, source };
      if (generated) entry.generated = true;
      files.push(entry);
    };

    for (const file of lib.files) {
      const sourcePath = join(packageDir, ...file.source.split("/"));
      if (!existsSync(sourcePath)) {
        throw new VendorError(`${lib.npm}@${packageJson.version} no longer ships ${file.source}.`);
      }
      const bytes = readFileSync(sourcePath);
      add(file.source, file.dest, bytes);
      for (const map of sourceMapsOf(bytes)) {
        const mapSource = posix.join(posix.dirname(file.source), map);
        const mapDest = posix.join(posix.dirname(file.dest), map);
        const mapPath = join(packageDir, ...mapSource.split("/"));
        if (!existsSync(mapPath)) {
          throw new VendorError(`${lib.npm}: ${file.source} names ${map}, which is not shipped.`);
        }
        add(mapSource, mapDest, readFileSync(mapPath));
      }
    }

    const licenseName = findLicense(packageDir);
    if (licenseName) {
      add(licenseName, VENDORED_LICENSE_NAME, readFileSync(join(packageDir, licenseName)));
    } else {
      add("package.json", VENDORED_LICENSE_NAME, generatedLicense(lib, packageJson), true);
    }

    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    manifest.libraries[lib.dir] = {
      files,
      integrity: locked.integrity,
      license: packageJson.license ?? null,
      npm: lib.npm,
      version: packageJson.version,
    };
  }

  return folders.map(({ root, outputs, manifest }) => ({
    root,
    outputs,
    manifestText: stableStringify(manifest),
  }));
}

// Every file under a destination folder, as posix paths relative to it.
function existingFiles(root, dir = root) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return existingFiles(root, full);
    return [toPosix(relative(root, full))];
  });
}

function removeEmptyDirs(root, dir = root) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyDirs(root, join(dir, entry.name));
  }
  if (dir !== root && readdirSync(dir).length === 0) rmdirSync(dir);
}

function write({ root, outputs, manifestText }) {
  const where = toPosix(relative(REPO_ROOT, root));
  mkdirSync(root, { recursive: true });
  for (const path of existingFiles(root)) {
    if (path !== MANIFEST_NAME && !outputs.has(path)) {
      rmSync(join(root, ...path.split("/")));
      console.log(`removed  ${where}/${path}`);
    }
  }
  removeEmptyDirs(root);
  for (const [path, bytes] of outputs) {
    const target = join(root, ...path.split("/"));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, bytes);
    console.log(`wrote    ${where}/${path} (${bytes.length} bytes)`);
  }
  writeFileSync(join(root, MANIFEST_NAME), manifestText);
  console.log(`wrote    ${where}/${MANIFEST_NAME}`);
}

function check({ root, outputs, manifestText }) {
  const where = toPosix(relative(REPO_ROOT, root));
  const problems = [];
  for (const [path, bytes] of outputs) {
    const target = join(root, ...path.split("/"));
    if (!existsSync(target)) {
      problems.push(`missing:    ${where}/${path}`);
    } else if (!readFileSync(target).equals(bytes)) {
      problems.push(`differs:    ${where}/${path} (not the package's bytes)`);
    }
  }
  for (const path of existingFiles(root)) {
    if (path !== MANIFEST_NAME && !outputs.has(path)) {
      problems.push(`unexpected: ${where}/${path}`);
    }
  }
  const manifestPath = join(root, MANIFEST_NAME);
  if (!existsSync(manifestPath)) {
    problems.push(`missing:    ${where}/${MANIFEST_NAME}`);
  } else if (readFileSync(manifestPath, "utf8") !== manifestText) {
    problems.push(`differs:    ${where}/${MANIFEST_NAME} (stale or edited by hand)`);
  }
  return problems;
}

function main(argv) {
  const checkOnly = argv.includes("--check");
  const unknown = argv.filter((arg) => arg !== "--check");
  if (unknown.length) {
    console.error(`usage: node scripts/vendor.mjs [--check] (unknown: ${unknown.join(" ")})`);
    return 2;
  }
  let planned;
  try {
    planned = plan();
  } catch (error) {
    if (!(error instanceof VendorError)) throw error;
    console.error(`vendor: ${error.message}`);
    return 1;
  }
  if (!checkOnly) {
    planned.forEach(write);
    console.log(`vendored ${LIBRARIES.length} libraries`);
    return 0;
  }
  const problems = planned.flatMap(check);
  if (problems.length) {
    console.error("vendor --check: the copies do not match node_modules:");
    for (const problem of problems) console.error(`  ${problem}`);
    console.error("Run `npm run vendor` in frontend/ and commit the result.");
    return 1;
  }
  const count = planned.reduce((sum, folder) => sum + folder.outputs.size, 0);
  console.log(`vendor --check: ${count} files match node_modules`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
