# One image, several ways to hand it to the action.
{ system, app }:
let
  arch = { x86_64-linux = "amd64"; aarch64-linux = "arm64"; }.${system};

  # The docker-archive layout (manifest.json, <config>.json, <layer>/layer.tar),
  # unpacked into a directory.
  layout = derivation {
    name = "hello-image-layout";
    inherit system arch app;
    imageName = "hello";
    imageTag = "latest";
    builder = "/bin/sh";
    args = [ ./make-layout.sh ];
    PATH = "/usr/bin:/bin";
  };

  # A docker archive made from the layout, compressed with `compress`.
  archive = { name, compress }: derivation {
    inherit name system layout compress;
    builder = "/bin/sh";
    args = [ "-eu" "-c" ''tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C "$layout" -cf - . | $compress > "$out"'' ];
    PATH = "/usr/bin:/bin";
  };
in
{
  # dockerTools.buildImage's default: a gzip-compressed docker archive.
  container = archive { name = "hello-image.tar.gz"; compress = "gzip -n"; };
  # dockerTools.buildImage with compressor = "none".
  container-tar = archive { name = "hello-image.tar"; compress = "cat"; };
  # dockerTools.buildImage with compressor = "zstd".
  container-zstd = archive { name = "hello-image.tar.zst"; compress = "zstd -q -c"; };

  # Like dockerTools.streamLayeredImage: an executable that writes the archive to stdout.
  container-stream = derivation {
    name = "stream-hello-image";
    inherit system layout;
    builder = "/bin/sh";
    args = [ "-eu" "-c" ''
      printf '#!/bin/sh\nexec /usr/bin/tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C %s -cf - .\n' "$layout" > "$out"
      chmod +x "$out"
    '' ];
    PATH = "/usr/bin:/bin";
  };
}
