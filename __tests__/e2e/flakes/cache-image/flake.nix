# The store cache tests' image. The test copies this directory to a temp dir and writes two
# files beside it: `salt` (unique per test, so every run builds its own store paths) and
# `counter` (an absolute path outside the store). Each builder appends its name to that file,
# which works because the tests build with the sandbox off: a run that builds nothing leaves
# it as it was. No inputs, no nixpkgs: /bin/sh and the host's tools.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      trim = s: builtins.replaceStrings [ "\n" ] [ "" ] s;
      salt = trim (builtins.readFile ./salt);
      counter = trim (builtins.readFile ./counter);
      step = system: name: script: attrs: derivation ({
        inherit name system salt counter;
        builder = "/bin/sh";
        args = [ "-eu" "-c" ''echo ${name} >> "$counter"
          ${script}'' ];
        PATH = "/usr/bin:/bin";
      } // attrs);
      image = system:
        let
          # Build-time only: in the cache (the build closure), not in the image's references.
          payload = step system "cache-test-payload" ''
            { echo "salt $salt"; seq -f 'payload-line-%g' 1 20000; } > "$out"
          '' { };
          # A one-layer docker-archive layout holding the payload.
          layout = step system "cache-test-layout" ''
            tarflags="--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner"
            mkdir rootfs
            cp "$payload" rootfs/payload.txt
            tar $tarflags -C rootfs -cf layer.tar .
            layer=$(sha256sum layer.tar | cut -d' ' -f1)
            cat > config.json <<JSON
            {"architecture":"$arch","os":"linux","created":"1970-01-01T00:00:01Z","config":{"Cmd":["/bin/cat","/payload.txt"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]}}
            JSON
            config=$(sha256sum config.json | cut -d' ' -f1)
            mkdir -p "$out/$layer"
            mv layer.tar "$out/$layer/layer.tar"
            mv config.json "$out/$config.json"
            echo "[{\"Config\":\"$config.json\",\"RepoTags\":[\"cache-test:latest\"],\"Layers\":[\"$layer/layer.tar\"]}]" > "$out/manifest.json"
          '' { inherit payload; arch = { x86_64-linux = "amd64"; aarch64-linux = "arm64"; }.${system}; };
        in
        step system "cache-test-image.tar" ''
          tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out" .
        '' { inherit layout; };
    in
    {
      packages = forAllSystems (system: { container = image system; });
    };
}
