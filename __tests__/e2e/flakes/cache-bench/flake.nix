# The store cache benchmark's image (scripts/bench-store-cache.mjs): a closure of a few hundred
# MB of incompressible data. The script copies this directory to a temp dir and writes `salt`
# (so every run builds new paths), `blobs` (how many 50 MB blobs) and `smalls` (how many small
# paths of 5-50 KB, as most of a real closure's are). The image's layer names every blob's and
# small path's store path, so they are in its runtime closure (`nix path-info -S`) as well as in
# its build closure. No inputs, no nixpkgs: /bin/sh and the host's tools, sandbox off.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      trim = s: builtins.replaceStrings [ "\n" ] [ "" ] s;
      salt = trim (builtins.readFile ./salt);
      count = builtins.fromJSON (trim (builtins.readFile ./blobs));
      smallCount = if builtins.pathExists ./smalls
        then builtins.fromJSON (trim (builtins.readFile ./smalls)) else 0;
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
          # 5 to 50 KB each, spread over that range.
          small = i: run system "bench-small-${toString i}" ''
            head -c "$size" /dev/urandom > "$out"
          '' { size = toString (5120 + (i * 7919) - (i * 7919) / 46080 * 46080); };
          blobs = builtins.genList blob count ++ builtins.genList small smallCount;
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
