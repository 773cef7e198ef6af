#!/usr/bin/env bash
# What the tests need beyond npm: kcat (librdkafka's command-line client), to check that an
# unchanged Kafka client works against the Kafka listener (test/kafka/kcat.test.ts). Installed
# from Debian when missing; a machine where that is not possible says what to install.
set -euo pipefail
if command -v kcat >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: kcat is missing; install the Debian package 'kcat' (apt-get install kcat) as root" >&2
  exit 1
fi
echo "install-test-deps: installing kcat" >&2
apt-get install -y -q kcat >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q kcat >/dev/null; }
command -v kcat >/dev/null
