# Images built with nixpkgs' dockerTools, for .github/workflows/e2e.yml (it needs the network,
# so the local test suite uses examples/hello instead).
{
  description = "nix-container-action e2e: dockerTools.buildImage and streamLayeredImage";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { nixpkgs, ... }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      images =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
        in
        {
          container = pkgs.dockerTools.buildImage {
            name = "hello-nixpkgs";
            tag = "latest";
            copyToRoot = [ pkgs.hello ];
            config.Cmd = [ "/bin/hello" ];
          };
          container-stream = pkgs.dockerTools.streamLayeredImage {
            name = "hello-nixpkgs-stream";
            tag = "latest";
            contents = [ pkgs.hello ];
            config.Cmd = [ "/bin/hello" ];
          };
        };
    in
    {
      packages = nixpkgs.lib.genAttrs systems images;
    };
}
