# Writes a one-layer docker-archive layout to $out from the flake's ./app directory.
set -eu
tarflags="--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner"

mkdir -p rootfs/app
cp -r "$app"/. rootfs/app/
chmod -R u+w,go-w rootfs
tar $tarflags -C rootfs -cf layer.tar .
layer=$(sha256sum layer.tar | cut -d' ' -f1)

cat > config.json <<JSON
{"architecture":"$arch","os":"linux","created":"1970-01-01T00:00:01Z","config":{"Cmd":["/bin/sh","/app/hello.sh"],"WorkingDir":"/app"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created":"1970-01-01T00:00:01Z","created_by":"nix-container-action example"}]}
JSON
config=$(sha256sum config.json | cut -d' ' -f1)

mkdir -p "$out/$layer"
mv layer.tar "$out/$layer/layer.tar"
mv config.json "$out/$config.json"
cat > "$out/manifest.json" <<JSON
[{"Config":"$config.json","RepoTags":["$imageName:$imageTag"],"Layers":["$layer/layer.tar"]}]
JSON
