// The `sgilo` command line on Deno: `deno run -A cli/deno.ts <command> [args]`, e.g.
//   deno run -A cli/deno.ts gradcheck [op]
//   deno run -A cli/deno.ts reconstruct --image models/fashion32/test-images/test-001.png \
//       --operator inpaint-random:0.25 --method sgilo --steps 3 --blocks 1 --chains 2 --out out/rec
// Same commands and arguments as the Node entry (cli/sgilo.mjs; test/deno_reconstruct.test.ts
// compares a reconstruction with Node's); the engine takes Deno's navigator.gpu
// (engine/device.ts) and reads WGSL with Deno.readTextFileSync (engine/shader_source.ts). Deno
// finds package.json next to this file and resolves the npm imports (wgsl_reflect) from
// node_modules, so no deno.json is needed; run `npm ci` first. Deno 2 needs no unstable flag for
// WebGPU. -A: the engine reads shaders/ and the GPU driver files.

// Only the part of Deno's API used here (the project type-checks without Deno's lib).
declare const Deno: { args: string[]; exitCode: number };

import { main } from './main.ts';

// exitCode, not Deno.exit(): main() destroys the device (shutdown()), after which Deno exits on its
// own; a device left alive would show up as a hang (the Deno test's timeout) instead of hiding.
Deno.exitCode = await main(Deno.args);
