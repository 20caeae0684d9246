// What a generator loader returns (nets/stylegan2_checkpoint.ts, nets/stylegan2_nvlabs.ts): the
// engine's configuration and rosinality-layout state dict, and which file and network they came from.

import type { HostTensor } from '../engine/host_tensor.ts';
import type { StateDict, StyleGAN2Config } from './stylegan2.ts';

export interface LoadedGenerator {
  config: StyleGAN2Config;
  stateDict: StateDict;
  latentAvg: HostTensor<Float32Array> | null;
  /** The file's format, e.g. "rosinality train.py checkpoint". */
  format: string;
  /** Which of the file's networks this is, e.g. "g_ema" or "G_ema". */
  network: string;
  /** The other networks the file holds (selectable with `network`). */
  networks: string[];
}

export interface GeneratorLoadOptions {
  /** 'g_ema' / 'G_ema' (default) or 'g' / 'G' (the training weights); case-insensitive. */
  network?: string;
  /** NVlabs pickles: false drops conv_clamp (SGILO rebuilds the synthesis network without it). */
  clamp?: boolean;
}

