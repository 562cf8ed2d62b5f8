# The store cache benchmark's image (scripts/bench-store-cache.mjs): a closure of a few hundred
# MB of incompressible data. The script copies this directory to a temp dir and writes `salt`
# (so every run builds new paths) and `blobs` (how many 50 MB blobs). The image's layer names
# every blob's store path, so the blobs are in its runtime closure (`nix path-info -S`) as well
# as in its build closure. No inputs, no nixpkgs: /bin/sh and the host's tools, sandbox off.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      trim = s: builtins.replaceStrings [ "\n" ] [ "" ] s;
      salt = trim (builtins.readFile ./salt);
      count = builtins.fromJSON (trim (builtins.readFile ./blobs));
      run = system: name: script: attrs: derivation ({
        inherit name system salt;
        builder = "/bin/sh";
        args = [ "-eu" "-c" script ];
        PATH = "/usr/bin:/bin";
      } // attrs);
      image = system:
        let
          blob = i: run system "bench-blob-${toString i}" ''
            mkdir "$out"
            head -c 50M /dev/urandom > "$out/data"
          '' { };
          blobs = builtins.genList blob count;
        in
        run system "bench-image.tar" ''
          mkdir rootfs
          for b in $blobs; do echo "$b"; done > rootfs/blobs.txt
          tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C rootfs -cf layer.tar .
          layer=$(sha256sum layer.tar | cut -d' ' -f1)
          echo "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]}}" > config.json
          config=$(sha256sum config.json | cut -d' ' -f1)
          mkdir -p "img/$layer"
          mv layer.tar "img/$layer/layer.tar"
          mv config.json "img/$config.json"
          echo "[{\"Config\":\"$config.json\",\"RepoTags\":[\"bench:latest\"],\"Layers\":[\"$layer/layer.tar\"]}]" > img/manifest.json
          tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C img -cf "$out" .
        '' { inherit blobs; };
    in
    {
      packages = forAllSystems (system: { container = image system; });
    };
}
