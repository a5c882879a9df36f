#!/bin/sh
# Makes the independent-signature fixture of tests/test_canonical.py without Python:
#   manifest.jcs          RFC 8785 bytes of manifest.input.json (without "signatures"), by the npm
#                         package `canonicalize` (installed into a temporary directory, not committed)
#   manifest.signed.json  manifest.input.json plus an ed25519 signature over manifest.jcs made by
#                         `openssl pkeyutl -sign -rawin`, written by node's JSON.stringify
#   fixture.json          the key id, the raw public key (base64) and the tools' versions
# The private key lives only in the temporary directory and is deleted with it.
# Run from anywhere:  sh tests/data/jcs/independent/make-fixture.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CANONICALIZE_VERSION=${CANONICALIZE_VERSION:-5.1.0}
KEY_ID=independent-openssl

npm install --silent --no-audit --no-fund --prefix "$work" "canonicalize@$CANONICALIZE_VERSION" >/dev/null
node "$here/canonicalize.mjs" "$work" "$here/manifest.input.json" > "$here/manifest.jcs"

openssl genpkey -algorithm ed25519 -out "$work/key.pem"
openssl pkeyutl -sign -rawin -inkey "$work/key.pem" -in "$here/manifest.jcs" -out "$work/sig.bin"
openssl pkey -in "$work/key.pem" -pubout -outform DER -out "$work/pub.der"
# The raw 32-byte ed25519 key is the last 32 bytes of its SubjectPublicKeyInfo DER.
public_key=$(tail -c 32 "$work/pub.der" | base64 | tr -d '\n')
signature=$(base64 < "$work/sig.bin" | tr -d '\n')

node "$here/add-signature.cjs" "$here/manifest.input.json" "$KEY_ID" "$signature" > "$here/manifest.signed.json"
cat > "$here/fixture.json" <<JSON
{
  "key_id": "$KEY_ID",
  "public_key": "$public_key",
  "signature": "$signature",
  "canonicalize": "$(node -p "require('$work/node_modules/canonicalize/package.json').version")",
  "node": "$(node --version)",
  "openssl": "$(openssl version)"
}
JSON
echo "wrote manifest.jcs, manifest.signed.json and fixture.json in $here"
