#!/bin/sh
echo "$GREETING (uid $(id -u)) in $(pwd): $(cat /app/data/message.txt)"
