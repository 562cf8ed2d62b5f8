# Outputs that must make the action fail with a clear message.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      run = system: name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
      };
    in
    {
      packages = forAllSystems (system: {
        not-an-image = run system "notes.txt" ''echo "just some text" > "$out"'';
        # The shape of nix2container's image JSON (its layers point into the store).
        nix2container-json = run system "image.json" ''echo '{"version":1,"image-config":{},"layers":[]}' > "$out"'';
        broken = run system "broken" ''echo "step 1 of 2"; echo "the example build fails on purpose" >&2; exit 3'';
      });
    };
}
