#!/usr/bin/env bash
# Self-test stage: a deliberately broken test (builds, then fails in the guest).
echo "20-fail: phase $1"
[ "$1" = build ] && exit 0
echo "20-fail: deliberately broken test" >&2
exit 1
