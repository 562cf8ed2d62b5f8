# Writes a docker-archive layout (manifest.json, <config>.json, <layer>/layer.tar) to $out,
# one layer for each directory in $layerDirs, as dockerTools does: the directory's closure
# (closure-<i>, from exportReferencesGraph) under /nix/store, less what earlier layers hold,
# and the directory's files linked from the image's root.
set -eu
tarflags="--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner"
mkdir -p "$out"

diffIds=""
layerPaths=""
inImage=" "
i=0
for dir in $layerDirs; do
  rm -rf rootfs
  mkdir -p rootfs/nix/store
  # closure-<i> lists each path, its deriver and its references: the paths are the lines that
  # name store paths, less the derivers.
  for path in $(grep '^/nix/store/' "closure-$i" | grep -v '\.drv$' | sort -u); do
    case "$inImage" in *" $path "*) continue ;; esac
    inImage="$inImage$path "
    cp -r "$path" rootfs/nix/store/
  done
  cp -r --symbolic-link "$dir"/* rootfs/
  chmod -R u+w,go-w rootfs
  i=$((i + 1))
  tar $tarflags -C rootfs -cf layer.tar .
  layer=$(sha256sum layer.tar | cut -d' ' -f1)
  mkdir -p "$out/$layer"
  mv layer.tar "$out/$layer/layer.tar"
  diffIds="$diffIds${diffIds:+,}\"sha256:$layer\""
  layerPaths="$layerPaths${layerPaths:+,}\"$layer/layer.tar\""
done

cat > config.json <<JSON
{"architecture":"$arch","os":"linux","created":"1970-01-01T00:00:01Z","config":{"Cmd":["/bin/sh","/app/hello.sh"],"WorkingDir":"/app"},"rootfs":{"type":"layers","diff_ids":[$diffIds]},"history":[{"created":"1970-01-01T00:00:01Z","created_by":"nix-container-action example"}]}
JSON
config=$(sha256sum config.json | cut -d' ' -f1)
mv config.json "$out/$config.json"
cat > "$out/manifest.json" <<JSON
[{"Config":"$config.json","RepoTags":["$imageName:$imageTag"],"Layers":[$layerPaths]}]
JSON
