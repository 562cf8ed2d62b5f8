#!/usr/bin/env bash
# Builds a Nix release tarball in the official layout from this machine's Nix, for tests that
# install Nix without network:
#
#   OUT/nix-<v>-<system>.tar.xz          nix-<v>-<system>/{install,.reginfo,store/<hash>-nix-<v>/...}
#   OUT/nix-<v>-<system>.tar.xz.sha256   the bare hex digest, as releases.nixos.org publishes it
#
# The store paths are made with `nix-store --add` in a private chroot store under a temp dir
# (this machine's /nix is never written), and `.reginfo` with `nix-store --dump-db`.
# The Nix store path holds a copy of the nix binary (its shared libraries stay those of the
# host's Debian package, which its RUNPATH names), the usual nix-* links and
# libexec/nix/build-remote; a nss-cacert path holds the host's CA bundle.
# Usage: scripts/make-nix-tarball.sh OUT_DIR   (prints the tarball's path)
set -euo pipefail

out=${1:?usage: make-nix-tarball.sh OUT_DIR}
host_nix=${HOST_NIX:-/usr/bin/nix}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$("$host_nix" --version | sed -n 's/^nix (Nix) \([0-9][0-9.]*\).*/\1/p')
[ -n "$version" ] || { echo "make-nix-tarball: cannot read the version of $host_nix" >&2; exit 1; }
case "$(uname -m)" in
  x86_64) system=x86_64-linux ;;
  aarch64) system=aarch64-linux ;;
  *) echo "make-nix-tarball: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
name=nix-$version-$system

work=$(mktemp -d /tmp/nca-tarball-XXXXXX)
cleanup() {
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The trees to add, named as the store paths should be.
mkdir -p "$work/src/nix-$version/bin" "$work/src/nix-$version/libexec/nix"
cp "$host_nix" "$work/src/nix-$version/bin/nix"
for link in nix-build nix-channel nix-collect-garbage nix-copy-closure nix-daemon nix-env \
  nix-hash nix-instantiate nix-prefetch-url nix-shell nix-store; do
  ln -s nix "$work/src/nix-$version/bin/$link"
done
ln -s ../../bin/nix "$work/src/nix-$version/libexec/nix/build-remote"
mkdir -p "$work/src/nss-cacert-3.0/etc/ssl/certs"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$work/src/nss-cacert-3.0/etc/ssl/certs/ca-bundle.crt"
else
  : >"$work/src/nss-cacert-3.0/etc/ssl/certs/ca-bundle.crt"
fi

store=(--store "$work/root")
nix_path=$("$host_nix"-store "${store[@]}" --add "$work/src/nix-$version")
cacert_path=$("$host_nix"-store "${store[@]}" --add "$work/src/nss-cacert-3.0")

dir=$work/stage/$name
mkdir -p "$dir/store"
for path in "$nix_path" "$cacert_path"; do
  cp -RPp "$work/root$path" "$dir/store/"
done
"$host_nix"-store "${store[@]}" --dump-db "$nix_path" "$cacert_path" >"$dir/.reginfo"
cat >"$dir/install" <<EOF
#!/bin/sh
# Stand-in for the release's installer, made by scripts/make-nix-tarball.sh: it only names the
# store paths, as the real one does; nix-container-action installs without running it.
nix="$nix_path"
cacert="$cacert_path"
echo "install \$nix with nix-container-action" >&2
exit 1
EOF
chmod 0755 "$dir/install"

tarball=$out/$name.tar.xz
XZ_OPT=-1 tar -cJf "$tarball.tmp" --owner=0 --group=0 --mode=u+rw,uga+r --mtime=@1 \
  -C "$work/stage" "$name"
mv "$tarball.tmp" "$tarball"
sha256sum "$tarball" | cut -c1-64 >"$tarball.sha256"
echo "$tarball"
