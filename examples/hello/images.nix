# One image, several ways to hand it to the action, as nixpkgs' dockerTools does.
{ system, app }:
let
  arch = { x86_64-linux = "amd64"; aarch64-linux = "arm64"; }.${system};
  tarflags = "--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner";

  # A directory built with the host's /bin/sh and tools (the sandbox is off).
  run = name: script: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-eu" "-c" script ];
    PATH = "/usr/bin:/bin";
  };

  # Layer contents: the flake's ./app at /app (and the path of its source, a reference), and
  # more for the layered image.
  appRoot = run "hello-app-root" ''mkdir -p "$out/app" && cp -r ${app}/. "$out/app/" && echo ${app} > "$out/app/source"'';
  etcRoot = run "hello-etc-root" ''mkdir -p "$out/etc" && echo "hello-image" > "$out/etc/hostname"'';
  dataRoot = run "hello-data-root" ''mkdir -p "$out/data" && seq 1 20000 > "$out/data/numbers.txt"'';

  # The docker-archive layout, unpacked into a directory. Like dockerTools, each layer holds
  # its directory's closure under /nix/store, which Nix lists in closure-<i>.
  layout = { name ? "hello", tag ? "latest", layerDirs }: derivation {
    name = "${name}-image-layout";
    inherit system arch;
    imageName = name;
    imageTag = tag;
    layerDirs = map toString layerDirs;
    exportReferencesGraph = builtins.concatLists
      (builtins.genList (i: [ "closure-${toString i}" (builtins.elemAt layerDirs i) ]) (builtins.length layerDirs));
    builder = "/bin/sh";
    args = [ ./make-layout.sh ];
    PATH = "/usr/bin:/bin";
  };

  # A docker archive made from a layout, compressed with `compress`.
  archive = { name, compress, layout }: run name
    ''tar ${tarflags} -C ${layout} -cf - . | ${compress} > "$out"'';

  # Like dockerTools.streamLayeredImage: an executable that writes the archive to stdout.
  stream = { name, layout }: run name ''
    printf '#!/bin/sh\nexec /usr/bin/tar ${tarflags} -C %s -cf - .\n' ${layout} > "$out"
    chmod +x "$out"
  '';

  # An OCI image layout directory (what tools such as nix2container or umoci can write).
  oci = { name, layout }: derivation {
    inherit name system layout;
    imageTag = "latest";
    builder = "/bin/sh";
    args = [ ./make-oci.sh ];
    PATH = "/usr/bin:/bin";
  };

  hello = layout { layerDirs = [ appRoot ]; };
  layered = layout { layerDirs = [ etcRoot dataRoot appRoot ]; };

  # For `npm run bench`: 3 layers of 100 MiB of incompressible data each, plus the app.
  bigLayer = n: run "big-layer-${toString n}"
    ''mkdir -p "$out/data" && head -c 104857600 /dev/urandom > "$out/data/blob-${toString n}"'';
  big = layout { name = "big"; layerDirs = [ (bigLayer 1) (bigLayer 2) (bigLayer 3) appRoot ]; };
in
{
  # dockerTools.buildImage's default: a gzip-compressed docker archive.
  container = archive { name = "hello-image.tar.gz"; compress = "gzip -n"; layout = hello; };
  # dockerTools.buildImage with compressor = "none".
  container-tar = archive { name = "hello-image.tar"; compress = "cat"; layout = hello; };
  # dockerTools.buildImage with compressor = "zstd".
  container-zstd = archive { name = "hello-image.tar.zst"; compress = "zstd -q -c"; layout = hello; };
  # dockerTools.buildLayeredImage: many layers, gzip.
  container-layered = archive { name = "hello-layered.tar.gz"; compress = "gzip -n"; layout = layered; };
  # dockerTools.streamLayeredImage.
  container-stream = stream { name = "stream-hello-image"; layout = hello; };
  # An OCI layout directory.
  container-oci = oci { name = "hello-oci"; layout = hello; };

  container-big = archive { name = "big-image.tar"; compress = "cat"; layout = big; };
  container-big-stream = stream { name = "stream-big-image"; layout = big; };
}
