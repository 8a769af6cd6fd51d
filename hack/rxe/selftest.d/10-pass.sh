#!/usr/bin/env bash
# Self-test stage that passes in both phases.
echo "10-pass: phase $1"
[ "$1" = run ] && echo "a note from 10-pass" >>"$RXE_NOTES"
exit 0
