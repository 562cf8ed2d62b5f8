#!/bin/sh
echo "Hello from an image built by Nix and pushed by nix-container-action."
