#!/usr/bin/env bash
# Point the major tag of a release (v1 for v1.2.3) at the release's commit and push it, as
# actions/setup-node and docker/build-push-action do, so `@v1` users get the release.
#   move-major-tag.sh TAG [REMOTE]     REMOTE defaults to origin
set -euo pipefail
tag=${1:?usage: move-major-tag.sh TAG [REMOTE]}
remote=${2:-origin}
major=$(node "$(dirname "$0")/release.mjs" major "$tag")
commit=$(git rev-parse --verify "refs/tags/$tag^{commit}")
git tag --force "$major" "$commit"
git push --force "$remote" "refs/tags/$major"
echo "moved $major to $tag ($commit)"
