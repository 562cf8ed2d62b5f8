# Writes an OCI image layout to $out from the docker-archive layout in $layout: the same
# layers (uncompressed) and config, an OCI manifest, and index.json naming it $imageTag.
set -eu
blobs="$out/blobs/sha256"
mkdir -p "$blobs"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"

# Store a file as a blob; prints its descriptor's "digest" and "size".
blob() {
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$blobs/$digest"
  printf '"digest":"sha256:%s","size":%s' "$digest" "$(stat -c %s "$1")"
}

manifest=$(cat "$layout/manifest.json")
config=$(printf '%s' "$manifest" | sed 's/.*"Config":"\([^"]*\)".*/\1/')
layers=""
for layer in $(printf '%s' "$manifest" | sed 's/.*"Layers":\[\([^]]*\)\].*/\1/' | tr -d '"' | tr ',' ' '); do
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",$(blob "$layout/$layer")}"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json",%s},"layers":[%s]}' \
  "$(blob "$layout/$config")" "$layers" > manifest.json
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$(blob manifest.json)" "$imageTag" > "$out/index.json"
