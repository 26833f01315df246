#!/usr/bin/env bash
# Runs test/demo.sql on a throwaway PostgreSQL 15 cluster (pg_virtualenv) with the installed
# extension: the tables before, each replay step with its progress, the tables after.
set -euo pipefail
cd "$(dirname "$0")/.."
pg_virtualenv -o max_worker_processes=16 psql -X -v ON_ERROR_STOP=1 -f test/demo.sql
