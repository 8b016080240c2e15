// Reads an app's package.json and lockfiles as Heroku's Node.js buildpack
// does, and decides the build: the package manager and its version, the
// scripts to run, and what to refuse. Prints one line per field, in this
// order (the compile script reads them with `read`):
//   manager      npm, yarn or pnpm
//   tool         what to install for it (yarn@1, pnpm@9.1.0, ...), or -
//   berry        1 for Yarn 2+ (a yarn.lock with __metadata), else 0
//   scripts      the build scripts package.json has, space-separated, or -
//   notes        warnings to print, joined by " | ", or -
// On input to refuse it prints the reason and exits 1.
//
// Usage: node inspect.js BUILD_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const semver = require("semver");

// The newest Node.js and npm majors released when this was written: a range
// no version up to these satisfies asks for a version that never existed.
const NEWEST_NODE = "26.99.99";
const NEWEST_NPM = "11.99.99";
const TOOL_VERSION = /^[0-9A-Za-z.^~<>=| *+-]{1,64}$/;

function fail(message) {
  process.stdout.write(message + "\n");
  process.exit(1);
}

const dir = process.argv[2];
let pkg;
try {
  pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
} catch (e) {
  fail(`package.json is not valid JSON (${e.message}): fix it and push again`);
}
if (!pkg || typeof pkg !== "object" || Array.isArray(pkg)) fail("package.json is not a JSON object");
const engines = pkg.engines && typeof pkg.engines === "object" ? pkg.engines : {};
const notes = [];

if (engines.iojs !== undefined) {
  fail('package.json engines.iojs: io.js is not supported (it merged back into Node.js in 2015): use engines.node');
}
function checkRange(field, value, newest, have) {
  if (value === undefined) return;
  if (typeof value !== "string" || !semver.validRange(value)) {
    fail(`package.json engines.${field} ${JSON.stringify(value)} is not a version range: write one like "20.x" or ">=18"`);
  }
  if (!semver.intersects(value, `<=${newest}`)) {
    fail(`package.json engines.${field} ${JSON.stringify(value)} names no ${field === "node" ? "Node.js" : "npm"} version that exists: write one like "20.x"`);
  }
  if (!semver.satisfies(have, value)) {
    notes.push(`package.json asks for ${field === "node" ? "Node.js" : "npm"} "${value}", but this stack provides ${field === "node" ? "v" : ""}${have}: building with it`);
  }
}
checkRange("node", engines.node, NEWEST_NODE, process.versions.node);
const npmVersion = (() => {
  try {
    return JSON.parse(fs.readFileSync("/usr/share/nodejs/npm/package.json", "utf8")).version;
  } catch (e) {
    return "9.2.0";
  }
})();
checkRange("npm", engines.npm, NEWEST_NPM, npmVersion);

// Lockfiles: at most one package manager's.
const lockfiles = [
  ["package-lock.json", "npm"],
  ["yarn.lock", "yarn"],
  ["pnpm-lock.yaml", "pnpm"],
].filter(([file]) => fs.existsSync(path.join(dir, file)));
if (lockfiles.length > 1) {
  fail(
    `several package managers' lockfiles were found: ${lockfiles.map(([f]) => f).join(", ")}: ` +
      "keep the one of the package manager the app uses, and delete the others"
  );
}

// packageManager ("pnpm@9.1.0", "yarn@4.5.0+sha512.…").
let declared = null;
if (pkg.packageManager !== undefined) {
  const m = typeof pkg.packageManager === "string" && pkg.packageManager.match(/^(npm|yarn|pnpm)@([^+\s]+)(\+.*)?$/);
  if (!m || !semver.valid(m[2])) {
    fail(`package.json packageManager ${JSON.stringify(pkg.packageManager)} is not NAME@VERSION with NAME npm, yarn or pnpm (e.g. "pnpm@9.1.0")`);
  }
  declared = { name: m[1], version: m[2] };
}
const fromLock = lockfiles.length ? lockfiles[0][1] : null;
if (declared && fromLock && declared.name !== fromLock) {
  fail(`package.json packageManager names ${declared.name}, but the lockfile is ${lockfiles[0][0]} (${fromLock}): make them agree`);
}
const manager = fromLock || (declared && declared.name) || "npm";
for (const other of ["yarn", "pnpm"]) {
  if (engines[other] !== undefined && manager !== other) {
    notes.push(`package.json engines.${other} is set, but the app uses ${manager}: engines.${other} is ignored`);
  }
}

let tool = "-";
let berry = 0;
if (manager !== "npm") {
  let version = null;
  if (declared && declared.name === manager) {
    version = declared.version;
    if (engines[manager] !== undefined && semver.validRange(engines[manager]) && !semver.satisfies(version, engines[manager])) {
      fail(`package.json packageManager ${manager}@${version} does not satisfy engines.${manager} ${JSON.stringify(engines[manager])}: make them agree`);
    }
  } else if (engines[manager] !== undefined) {
    if (typeof engines[manager] !== "string" || !semver.validRange(engines[manager])) {
      fail(`package.json engines.${manager} ${JSON.stringify(engines[manager])} is not a version range`);
    }
    version = engines[manager];
  }
  if (manager === "yarn") {
    const lock = fromLock ? fs.readFileSync(path.join(dir, "yarn.lock"), "utf8") : "";
    berry = /^__metadata:/m.test(lock) || (version && semver.minVersion(version) && semver.minVersion(version).major >= 2) ? 1 : 0;
    version = version || (berry ? "4" : "1");
  } else {
    version = version || "9";
  }
  if (!TOOL_VERSION.test(version)) fail(`the ${manager} version ${JSON.stringify(version)} is not a version`);
  // Yarn 2+ is published as @yarnpkg/cli-dist; Yarn 1 and pnpm as themselves.
  tool = `${berry ? "@yarnpkg/cli-dist" : manager}@${version}`;
}

const scripts = pkg.scripts && typeof pkg.scripts === "object" ? pkg.scripts : {};
const have = ["heroku-prebuild", "build", "heroku-postbuild", "heroku-cleanup"].filter((s) => typeof scripts[s] === "string");

process.stdout.write([manager, tool, String(berry), have.join(" ") || "-", notes.join(" | ") || "-"].join("\n") + "\n");
