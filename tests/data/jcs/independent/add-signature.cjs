// The manifest with one ed25519 signature added, written by node's JSON.stringify:
// node add-signature.cjs MANIFEST KEY_ID SIGNATURE_BASE64 > OUT
const fs = require("fs");
const [manifestPath, keyId, signature] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
manifest.signatures = [{ key_id: keyId, algorithm: "ed25519", signature: signature }];
process.stdout.write(JSON.stringify(manifest, null, 2) + "\n");
