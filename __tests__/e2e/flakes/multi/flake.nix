# Multi-platform tests: the example image for x86_64-linux and aarch64-linux (both buildable
# on an x86_64 machine: the builders are the host's /bin/sh, and `--system` makes Nix build
# for the other system), and images that must make the action fail with a clear message.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      images = system: import ../../../../examples/hello/images.nix {
        inherit system;
        app = ../../../../examples/hello/app;
      };
    in
    {
      packages = forAllSystems (system: {
        container = (images system).container;
        container-stream = (images system).container-stream;
        # An image whose config says amd64 whatever it was built for (nixpkgs #106695).
        wrong-arch = (images "x86_64-linux").container;
        # For aarch64-linux, a builder this machine cannot run without QEMU: what a real
        # aarch64 toolchain does on an x86_64 runner with no emulator.
        foreign = if system == "aarch64-linux"
          then derivation { name = "foreign-image"; inherit system; builder = ./aarch64-program; }
          else (images system).container;
      });
    };
}
