#!/bin/bash
# Runs buildpacks in the build container (Heroku buildpack API v2). Fixed
# text shipped inside paas-server; no user input is interpolated into it.
#   $1: "detect" (use the first buildpack whose detect succeeds) or
#       "explicit" (run every buildpack, in order; each must detect)
#   $2: how many buildpacks there are under /tmp/buildpacks/0..N-1
#
# Its result is /tmp/paas-out: the buildpacks' release-N.yml, code.tar (/app
# as a tar, without the dependency folders buildpacks declared), and, when
# buildpacks declared dependency folders (a line "PATH KEY" each in
# $PAAS_DEPS_FILE), deps-key and, unless PAAS_DEPS_KNOWN already names that
# key, deps.tar with those folders.
#
# A lone buildpack also gets PAAS_DEPS_LAYER_KEY, the key of the app's
# current dependency layer: when the sha256 of the lines it declares equals
# it, that layer already holds those folders, so the buildpack may leave
# them out of /app (no copy from its cache). With several buildpacks it is
# unset: one may keep its folder while another's changes, and the new layer
# needs every folder.
set -uo pipefail
mode=$1 count=$2
build=/app cache=/tmp/cache env_dir=/tmp/env out=/tmp/paas-out
mkdir -p "$cache" "$env_dir" "$out"
export PAAS_DEPS_FILE=$out/deps
: >"$PAAS_DEPS_FILE"
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
  echo " !     No buildpack supports this app. Add one of: requirements.txt, Pipfile.lock,"
  echo " !     poetry.lock or uv.lock (Python), package.json (Node.js), go.mod (Go),"
  echo " !     index.html (static site), a Procfile"
  echo " !     (an app that brings its own binary), or a Dockerfile; or set BUILDPACK_URL."
  exit 1
fi

# The app's config vars reach the build as environment variables, as
# Heroku's buildpacks export them (private registry tokens, build-time
# settings), except those that would change how the build itself runs.
for file in "$env_dir"/*; do
  [ -f "$file" ] || continue
  name=${file##*/}
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
  case $name in
    PATH | HOME | LANG | SHELL | STACK | CPATH | CPPATH | LIBRARY_PATH | LD_* | GIT_DIR | PYTHONHOME | PYTHONPATH | BUILDPACK_URL | SSL_CERT_FILE | PAAS_*) continue ;;
  esac
  export "$name=$(cat "$file")"
done

if [ "${#selected[@]}" = 1 ] && [ -n "${PAAS_DEPS_KNOWN:-}" ]; then
  export PAAS_DEPS_LAYER_KEY=$PAAS_DEPS_KNOWN
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

# Split /app into dependency folders (an image layer of their own, reused
# while their key is unchanged) and everything else.
excludes=() deps=() missing=()
while read -r path key; do
  [ -n "$path" ] || continue
  excludes+=("--exclude=app/$path")
  if [ -d "$build/$path" ]; then deps+=("app/$path"); else missing+=("$path"); fi
done <"$PAAS_DEPS_FILE"
if [ "${#excludes[@]}" -gt 0 ]; then
  key=$(sha256sum "$PAAS_DEPS_FILE" | cut -d' ' -f1)
  echo "$key" >"$out/deps-key"
  if [ "${PAAS_DEPS_KNOWN:-}" != "$key" ]; then
    if [ "${#missing[@]}" -gt 0 ]; then
      echo " !     a buildpack declared ${missing[*]} as dependencies but left it out of the app, and the dependency layer changed"
      exit 1
    fi
    tar -C / -cf "$out/deps.tar" "${deps[@]}" || { echo " !     cannot pack the dependencies"; exit 1; }
  fi
fi
tar -C / "${excludes[@]}" -cf "$out/code.tar" app || { echo " !     cannot pack the app"; exit 1; }
# The Procfile as the build left it (a build may write or change it).
if [ -f "$build/Procfile" ]; then cp "$build/Procfile" "$out/Procfile"; fi
