# Writes a docker-archive layout (manifest.json, <config>.json, <layer>/layer.tar) to $out,
# one layer for each directory in $layerDirs, its contents at the image's root.
set -eu
tarflags="--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner"
mkdir -p "$out"

diffIds=""
layerPaths=""
for dir in $layerDirs; do
  rm -rf rootfs
  mkdir rootfs
  cp -r "$dir"/. rootfs/
  chmod -R u+w,go-w rootfs
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
