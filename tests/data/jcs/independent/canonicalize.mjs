// RFC 8785 canonical bytes of a manifest without its "signatures", by the npm package
// `canonicalize` (not by us):  node canonicalize.mjs MODULE_DIR MANIFEST > OUT
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [moduleDir, manifestPath] = process.argv.slice(2);
const resolved = createRequire(join(moduleDir, "noop.js")).resolve("canonicalize");
const loaded = await import(pathToFileURL(resolved).href);
const canonicalize = loaded.default ?? loaded;
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
delete manifest.signatures;
process.stdout.write(canonicalize(manifest));
