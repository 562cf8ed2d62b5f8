# An example image with no flake inputs (no nixpkgs, no network): the derivations
# use /bin/sh and the host's coreutils, tar and gzip, so build it with the sandbox off
# (the test setup and `npm run demo` do). Real flakes use nixpkgs' dockerTools instead.
{
  description = "nix-container-action example: a tiny image in several Nix output formats";

  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      images = system: import ./images.nix { inherit system; app = ./app; };
    in
    {
      packages = forAllSystems images;
    };
}
