#!/bin/sh
case $1 in [Uu]sername*) printf '%s\n' "$HPCDO_GIT_USER";; *) printf '%s\n' "$HPCDO_GIT_PASS";; esac
