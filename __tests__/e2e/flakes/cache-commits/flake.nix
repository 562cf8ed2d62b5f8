# A repository whose app changes on every commit over a toolchain that does not: the store
# cache's commit sequence (e2e and `npm run bench:store-cache -- --commits`). The caller copies
# this directory and writes beside it: `salt` (so every run owns its store paths), `app.txt`
# (the app's one source file, edited per commit), and optionally `libs` (how many small library
# paths of 5-50 KB, default 10), `blobs` and `blob-mb` (toolchain blobs of random data, default
# one of 1 MB) and `counter` (a file outside the store each builder appends its name to).
# Per commit the closure gains exactly 5 paths: app.txt, the app and the image (each with its
# derivation). No inputs, no nixpkgs: /bin/sh and the host's tools, sandbox off.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      trim = s: builtins.replaceStrings [ "\n" ] [ "" ] s;
      read = name: default:
        let file = ./. + "/${name}"; in
        if builtins.pathExists file then trim (builtins.readFile file) else default;
      salt = read "salt" "";
      counter = read "counter" "/dev/null";
      libCount = builtins.fromJSON (read "libs" "10");
      blobCount = builtins.fromJSON (read "blobs" "1");
      blobMb = read "blob-mb" "1";
      step = system: name: script: attrs: derivation ({
        inherit name system salt counter;
        builder = "/bin/sh";
        args = [ "-eu" "-c" ''echo ${name} >> "$counter"
          ${script}'' ];
        PATH = "/usr/bin:/bin";
      } // attrs);
      image = system:
        let
          blob = i: step system "commits-toolchain-${toString i}" ''
            mkdir "$out"
            head -c ${blobMb}M /dev/urandom > "$out/data"
          '' { };
          lib = i: step system "commits-lib-${toString i}" ''
            head -c "$size" /dev/urandom > "$out"
          '' { size = toString (5120 + (i * 7919) - (i * 7919) / 46080 * 46080); };
          toolchain = builtins.genList blob blobCount ++ builtins.genList lib libCount;
          # The app: its source and the toolchain it was built with.
          app = step system "commits-app" ''
            { cat "$src"; for t in $toolchain; do echo "$t"; done; } > "$out"
          '' { src = ./app.txt; inherit toolchain; };
        in
        step system "commits-image.tar" ''
          mkdir rootfs
          cp "$app" rootfs/app
          tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C rootfs -cf layer.tar .
          layer=$(sha256sum layer.tar | cut -d' ' -f1)
          echo "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]}}" > config.json
          config=$(sha256sum config.json | cut -d' ' -f1)
          mkdir -p "img/$layer"
          mv layer.tar "img/$layer/layer.tar"
          mv config.json "img/$config.json"
          echo "[{\"Config\":\"$config.json\",\"RepoTags\":[\"commits:latest\"],\"Layers\":[\"$layer/layer.tar\"]}]" > img/manifest.json
          tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C img -cf "$out" .
        '' { inherit app; };
    in
    {
      packages = forAllSystems (system: { container = image system; });
    };
}
