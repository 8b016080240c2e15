#!/bin/bash
# Runs buildpacks in the build container (Heroku buildpack API v2). Fixed
# text shipped inside paas-server; no user input is interpolated into it.
#   $1: "detect" (use the first buildpack whose detect succeeds) or
#       "explicit" (run every buildpack, in order; each must detect)
#   $2: how many buildpacks there are under /tmp/buildpacks/0..N-1
set -uo pipefail
mode=$1 count=$2
build=/app cache=/tmp/cache env_dir=/tmp/env out=/tmp/paas-out
mkdir -p "$cache" "$env_dir" "$out"
chmod -R a+x /tmp/buildpacks/*/bin 2>/dev/null

selected=()
for ((i = 0; i < count; i++)); do
  bp=/tmp/buildpacks/$i
  if [ ! -x "$bp/bin/compile" ]; then
    echo " !     buildpack $i has no bin/compile: it does not follow the buildpack API"
    exit 1
  fi
  if name=$("$bp/bin/detect" "$build" 2>/dev/null); then
    if [ "$mode" = detect ]; then
      echo "-----> ${name:-App} app detected"
      selected=("$i")
      break
    fi
    echo "-----> ${name:-App} app detected (buildpack $((i + 1)) of $count)"
    selected+=("$i")
  elif [ "$mode" = explicit ]; then
    echo " !     buildpack $((i + 1)) of $count does not support this app (its bin/detect said no)"
    exit 1
  fi
done
if [ "${#selected[@]}" = 0 ]; then
  echo " !     No buildpack supports this app. Add one of: requirements.txt (Python),"
  echo " !     package.json (Node.js), go.mod (Go), index.html (static site), a Procfile"
  echo " !     (an app that brings its own binary), or a Dockerfile; or set BUILDPACK_URL."
  exit 1
fi

for i in "${selected[@]}"; do
  bp=/tmp/buildpacks/$i
  if ! "$bp/bin/compile" "$build" "$cache" "$env_dir"; then
    echo " !     Build failed: the buildpack's compile step exited non-zero"
    exit 1
  fi
  if [ -x "$bp/bin/release" ]; then
    "$bp/bin/release" "$build" >"$out/release-$i.yml" || { echo " !     the buildpack's release step failed"; exit 1; }
  fi
done
