# An image that holds a real program: Debian's static busybox (package busybox-static, the
# host's /bin/busybox) copied in by a derivation that uses the host's /bin/sh, coreutils and
# tar (no inputs, no nixpkgs, sandbox off). Its own command serves /www with busybox httpd on
# the port in ./port: the tests copy this directory and write a free port there.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      port = builtins.replaceStrings [ "\n" ] [ "" ] (builtins.readFile ./port);
      image = system:
        let
          arch = { x86_64-linux = "amd64"; aarch64-linux = "arm64"; }.${system};
          tarflags = "--sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner";
          config = builtins.toJSON {
            architecture = arch;
            os = "linux";
            config.Cmd = [
              "/bin/busybox" "sh" "-c"
              "echo httpd starting on port ${port}; exec /bin/busybox httpd -f -vv -p ${port} -h /www"
            ];
            rootfs = { type = "layers"; diff_ids = [ "@DIFF_ID@" ]; };
          };
        in
        derivation {
          name = "busybox-image.tar";
          inherit system config;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          args = [ "-eu" "-c" ''
            mkdir -p root/bin root/www root/tmp out
            cp /bin/busybox root/bin/busybox
            echo ok > root/www/health
            tar ${tarflags} -C root -cf layer.tar .
            id=$(sha256sum layer.tar | cut -d' ' -f1)
            mkdir "out/$id"
            mv layer.tar "out/$id/layer.tar"
            printf '%s' "$config" | sed "s/@DIFF_ID@/sha256:$id/" > config.json
            c=$(sha256sum config.json | cut -d' ' -f1)
            mv config.json "out/$c.json"
            printf '[{"Config":"%s.json","RepoTags":["busybox-test:latest"],"Layers":["%s/layer.tar"]}]' "$c" "$id" > out/manifest.json
            tar ${tarflags} -C out -cf "$out" .
          '' ];
        };
    in
    {
      packages = forAllSystems (system: { container = image system; });
    };
}
