#!/usr/bin/env bash
# Installs what the test suite needs beyond Go modules, when missing:
# tmux (drives the shell through a real terminal) and sqlite3 (checks
# backup files with the standard tool). Uses Debian's packages.
set -euo pipefail
need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
if [ ${#need[@]} -gt 0 ]; then
	if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		echo "installing: ${need[*]}"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "warning: missing ${need[*]} and cannot install them; tests that need them will skip" >&2
	fi
fi
go mod download
