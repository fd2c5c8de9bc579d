#!/usr/bin/env bash
# A self-signed certificate for trying the SAP example locally (var/sap-example/).
# In production use a certificate from your CA and import that CA in STRUST.
set -euo pipefail
dir=${1:-var/sap-example}
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -sha256 -days 365 -nodes \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$dir/key.pem"
echo "certificate: $dir/cert.pem  key: $dir/key.pem"
