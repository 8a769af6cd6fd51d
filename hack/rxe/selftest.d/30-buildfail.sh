#!/usr/bin/env bash
# Self-test stage whose host build fails: it must never run in the guest.
echo "30-buildfail: phase $1"
[ "$1" = build ] && { echo "30-buildfail: deliberately broken build" >&2; exit 1; }
echo "30-buildfail: ran although its build failed" >&2
exit 0
