#!/usr/bin/env bash
# Self-test stage that hangs in the guest: the stage timeout must kill it.
echo "40-hang: phase $1"
[ "$1" = build ] && exit 0
sleep 1000
