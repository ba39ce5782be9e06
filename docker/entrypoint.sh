#!/bin/sh
# Entry point of the bench-runner image: a usable HOME for any --user uid, the SNPE SDK's host
# tools on PATH when an SDK is at $SNPE_ROOT (baked in or bind-mounted), then the command.
set -e

# `docker run --user UID:GID` with a uid that has no passwd entry gets HOME=/ (not writable);
# adb keeps its keys in $HOME/.android, tqdm and onnxruntime need nothing else.
if [ -z "${HOME:-}" ] || [ "$HOME" = / ] || [ ! -w "$HOME" ]; then
    if [ ! -d "${HOME:-/}/.android" ]; then
        export HOME=/tmp/profiler-home
        mkdir -p "$HOME"
    fi
fi

if [ -n "${SNPE_ROOT:-}" ] && [ -d "$SNPE_ROOT/bin" ]; then
    for arch in x86_64-linux-clang x86_64-linux-gcc; do
        if [ -d "$SNPE_ROOT/bin/$arch" ]; then
            PATH="$SNPE_ROOT/bin/$arch:$PATH"
            LD_LIBRARY_PATH="$SNPE_ROOT/lib/$arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            break
        fi
    done
    [ -d "$SNPE_ROOT/lib/python" ] && PYTHONPATH="$SNPE_ROOT/lib/python${PYTHONPATH:+:$PYTHONPATH}"
    export PATH LD_LIBRARY_PATH PYTHONPATH
fi

if [ "$#" -eq 0 ]; then
    set -- profiler --help
fi
exec "$@"
