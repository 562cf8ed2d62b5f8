# An image whose base layers never change and whose app layer holds ./app.txt: the tests and
# `npm run bench` copy this directory and write app.txt, so each "commit" changes one layer.
# Each layer is its own derivation (its tar and diff_id made once), as nix2container and
# dockerTools.streamLayeredImage arrange it, so a new app.txt rebuilds only the app layer and
# the small layout. No inputs, no nixpkgs: /bin/sh and the host's tools, sandbox off.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      tarflags = "--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner";
      images = system:
        let
          arch = { x86_64-linux = "amd64"; aarch64-linux = "arm64"; }.${system};
          run = name: script: attrs: derivation ({
            inherit name system;
            builder = "/bin/sh";
            args = [ "-eu" "-c" script ];
            PATH = "/usr/bin:/bin";
          } // attrs);
          # $out/layer.tar and $out/diff-id: a layer holding what `fill` writes under ./root.
          layer = name: fill: run name ''
            mkdir -p root "$out"
            (cd root && ${fill})
            tar ${tarflags} -C root -cf "$out/layer.tar" .
            echo "sha256:$(sha256sum "$out/layer.tar" | cut -d' ' -f1)" > "$out/diff-id"
          '' { };
          base1 = layer "app-layers-base-1" ''mkdir data && seq 1 100000 > data/base-1.txt'';
          base2 = layer "app-layers-base-2" ''mkdir etc && seq 1 50000 > etc/base-2.txt'';
          # For `npm run bench`: 100 MiB of random data each, made once.
          bigBase = n: layer "app-layers-big-${toString n}"
            ''mkdir data && head -c 104857600 /dev/urandom > data/blob-${toString n}'';
          app = layer "app-layers-app" ''mkdir app && cp ${./app.txt} app/app.txt'';
          # The docker-archive layout, its layers linked from their derivations.
          layout = name: layers: run "${name}-layout" ''
            mkdir -p "$out"
            ids=""
            paths=""
            for l in ${toString layers}; do
              id=$(cat "$l/diff-id")
              mkdir -p "$out/''${id#sha256:}"
              ln -s "$l/layer.tar" "$out/''${id#sha256:}/layer.tar"
              ids="$ids''${ids:+,}\"$id\""
              paths="$paths''${paths:+,}\"''${id#sha256:}/layer.tar\""
            done
            printf '{"architecture":"${arch}","os":"linux","config":{"Cmd":["/bin/cat","/app/app.txt"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$ids" > config.json
            config=$(sha256sum config.json | cut -d' ' -f1)
            mv config.json "$out/$config.json"
            printf '[{"Config":"%s.json","RepoTags":["${name}:latest"],"Layers":[%s]}]' "$config" "$paths" > "$out/manifest.json"
          '' { };
          # A plain docker archive, links followed.
          archive = name: layers: run "${name}.tar"
            ''tar ${tarflags} -h -C ${layout name layers} -cf "$out" .'' { };
          # Like dockerTools.streamLayeredImage: a script that writes the archive to stdout.
          stream = name: layers: run "stream-${name}" ''
            printf '#!/bin/sh\nexec /usr/bin/tar ${tarflags} -h -C %s -cf - .\n' ${layout name layers} > "$out"
            chmod +x "$out"
          '' { };
        in
        {
          container = archive "app-layers" [ base1 base2 app ];
          container-stream = stream "app-layers" [ base1 base2 app ];
          container-big-stream = stream "app-layers-big" [ (bigBase 1) (bigBase 2) (bigBase 3) app ];
        };
    in
    {
      packages = forAllSystems images;
    };
}
