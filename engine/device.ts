// Device acquisition for every runtime we support:
//   Node  -> npm `webgpu` (Dawn), loaded on demand so browsers and Deno never see it;
//   Deno, browsers -> `navigator.gpu`.
// We request the adapter's own maxima for the limits that bound tensor sizes and kernel tiles
// (buffer size, storage binding size, workgroup storage), not the spec defaults, so a kernel can
// size its tiles from `GpuContext.limits` and the tensor layer can refuse what cannot be bound.

export type Runtime = 'node' | 'deno' | 'browser';

export interface AdapterReport {
  runtime: Runtime;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader) or an adapter flagged as fallback. */
  isSoftware: boolean;
  features: string[];
}

/** The limits we asked the device for (the adapter's maxima). */
export interface RequestedLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxUniformBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupSizeZ: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minUniformBufferOffsetAlignment: number;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterReport;
  limits: RequestedLimits;
  hasTimestampQuery: boolean;
  /**
   * The device's subgroup size range when it has the `subgroups` feature, else null. Kernels with a
   * subgroup variant (shaders/matmul_subgroup.wgsl) use it through `subgroupTiles` below.
   */
  subgroups: { min: number; max: number } | null;
  /**
   * The GPU object the device came from. Dawn (Node) stops processing events once it is garbage
   * collected, so pending mapAsync promises would never settle: we hold it until destroy().
   */
  gpu: GPU | null;
  /** Destroys the device and drops the GPU object so that a Node process can exit. */
  destroy(): void;
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles for Node, e.g. 'disable-dawn-features=timestamp_quantization'. */
  dawnOptions?: string[];
}

const LIMIT_NAMES: (keyof RequestedLimits)[] = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minUniformBufferOffsetAlignment',
];

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export const NO_ADAPTER_HELP = [
  'No WebGPU adapter was found.',
  'On Debian 12 (bookworm) as root, install a Mesa lavapipe new enough for Dawn (Mesa >= 25):',
  '  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
  '  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers',
  '(use the mirror your /etc/apt sources already name). On Debian 13 or Ubuntu 24.04+:',
  '  apt-get install -y mesa-vulkan-drivers',
  'or run `npm run provision`, which does this for you when run as root.',
  'Alternatively use SwiftShader from Debian chromium-common:',
  '  apt-get install -y chromium-common   (the engine then uses /usr/lib/chromium/vk_swiftshader_icd.json)',
  'In a browser: use Chrome/Edge 113+ or start Chromium with --enable-unsafe-webgpu.',
].join('\n');

export function detectRuntime(): Runtime {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  if (g.Deno !== undefined) return 'deno';
  if (g.process?.versions?.node !== undefined) return 'node';
  return 'browser';
}

async function nodeGpu(dawnOptions: string[]): Promise<GPU> {
  // Lavapipe prints `XDG_RUNTIME_DIR is invalid` on every start unless it is set.
  const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
  if (!env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = '/tmp';
  const moduleName = 'webgpu'; // through a variable so bundlers for the browser leave it alone
  const dawn = (await import(moduleName)) as { create(options: string[]): GPU; globals: object };
  // GPUBufferUsage, GPUMapMode, ... are globals in browsers and Deno; Dawn's package exports them.
  Object.assign(globalThis, dawn.globals);
  return dawn.create(dawnOptions);
}

function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /llvmpipe|lavapipe|swiftshader|software|warp/.test(text);
}

export async function acquireGpu(options: AcquireOptions = {}): Promise<GpuContext> {
  const runtime = detectRuntime();
  let gpu: GPU | undefined;
  if (runtime === 'node') {
    gpu = await nodeGpu(options.dawnOptions ?? []);
  } else {
    gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new Error(`This ${runtime} has no navigator.gpu (WebGPU is unavailable).\n${NO_ADAPTER_HELP}`);
  }
  let adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter && runtime === 'node') {
    // No Vulkan driver of our own: try SwiftShader from Debian's chromium-common (about 4x slower
    // than lavapipe). The Vulkan loader reads VK_ICD_FILENAMES when Dawn creates its instance.
    const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
    const fs = (globalThis as unknown as { process: { getBuiltinModule(id: string): { existsSync(p: string): boolean } } }).process.getBuiltinModule('node:fs');
    if (!env.VK_ICD_FILENAMES && fs.existsSync(SWIFTSHADER_ICD)) {
      env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      gpu = await nodeGpu(options.dawnOptions ?? []);
      adapter = await gpu.requestAdapter();
    }
  }
  if (!adapter) throw new Error(NO_ADAPTER_HELP);

  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    if (name === 'minUniformBufferOffsetAlignment') continue; // a minimum: the default is the safe choice
    requiredLimits[name] = adapter.limits[name];
  }
  const wanted = ['timestamp-query', 'subgroups'] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });

  const info = adapter.info;
  const report: AdapterReport = {
    runtime,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware: isSoftwareAdapter(info),
    features: [...adapter.features].map(String).sort(),
  };
  const limits = {} as RequestedLimits;
  for (const name of LIMIT_NAMES) limits[name] = device.limits[name];
  const context: GpuContext = {
    device,
    adapter: report,
    limits,
    hasTimestampQuery: device.features.has('timestamp-query'),
    subgroups: device.features.has('subgroups') ? subgroupRange(adapter.info) : null,
    gpu,
    destroy: () => {
      device.destroy();
      context.gpu = null;
    },
  };
  return context;
}

function subgroupRange(info: GPUAdapterInfo): { min: number; max: number } | null {
  const i = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  if (!i.subgroupMinSize || !i.subgroupMaxSize) return null; // the feature without the sizes: unusable
  return { min: i.subgroupMinSize, max: i.subgroupMaxSize };
}

/**
 * Whether kernels may use their 8-lane subgroup tiles: lanes 0-7 of a subgroup load eight rows of
 * an operand with one vector load each and subgroupBroadcast hands every row to every lane. On
 * lavapipe (Mesa 25.0) this matters because it compiles every storage load whose address is not a
 * compile-time constant into eight scalar loads with a bounds check and a branch each, while a
 * subgroup broadcast is one extract; the README (Performance) and bench/results have the measurements.
 * Needs subgroups of at least 8 lanes. Only CPU adapters use it by default: the 8-invocation
 * workgroups suit a SIMD-8 CPU backend and are not tuned for GPUs. SGILO_SUBGROUPS=0 turns
 * it off (for A/B benchmarks); =1 forces it on any adapter with the feature.
 */
export function subgroupTiles(gpu: Pick<GpuContext, 'subgroups' | 'adapter'>): boolean {
  if (!gpu.subgroups || gpu.subgroups.min < 8) return false;
  if (subgroupOverride !== null) return subgroupOverride;
  const forced = forcedFamily();
  if (forced !== null) return forced === 'subgroup';
  if (SUBGROUPS_FLAG === '0') return false;
  if (SUBGROUPS_FLAG === '1') return true;
  return gpu.adapter.isSoftware;
}

// Read once: subgroupTiles runs on every matmul and conv dispatch.
const SUBGROUPS_FLAG = envFlag('SGILO_SUBGROUPS');
let subgroupOverride: boolean | null = null;

/** Tests and benches: force the subgroup tiles on or off where the device allows them; null restores the default. */
export function overrideSubgroupTiles(on: boolean | null): void {
  subgroupOverride = on;
}

/**
 * The kernel families of matmul: 'general' (shaders/matmul.wgsl), 'subgroup' (8-lane subgroup
 * tiles, CPU adapters) and 'tiled' (workgroup-memory tiles with register blocks, hardware GPUs).
 */
export type KernelFamily = 'general' | 'subgroup' | 'tiled';
const FAMILIES: readonly KernelFamily[] = ['general', 'subgroup', 'tiled'];

let familyOverride: KernelFamily | null = null;

/** Tests and benches: force a kernel family (as SGILO_KERNELS does); null restores the default. */
export function overrideKernelFamily(family: KernelFamily | null): void {
  if (family !== null && !FAMILIES.includes(family)) throw new RangeError(`kernel family must be one of ${FAMILIES.join(', ')}, got ${family}`);
  familyOverride = family;
}

/** The forced family: the test hook, else SGILO_KERNELS, else null. */
function forcedFamily(): KernelFamily | null {
  if (familyOverride !== null) return familyOverride;
  if (KERNELS_FLAG === undefined || KERNELS_FLAG === '') return null;
  if (!FAMILIES.includes(KERNELS_FLAG as KernelFamily)) throw new RangeError(`SGILO_KERNELS must be one of ${FAMILIES.join(', ')}, got "${KERNELS_FLAG}"`);
  return KERNELS_FLAG as KernelFamily;
}

const KERNELS_FLAG = envFlag('SGILO_KERNELS');

/**
 * Which matmul kernel family runs on this device: the subgroup tiles where subgroupTiles allows
 * them (CPU adapters by default), the workgroup-tiled kernel on hardware GPUs, the general kernel
 * on other CPU adapters (SwiftShader, Deno's wgpu). SGILO_KERNELS=general|subgroup|tiled forces a
 * family ('subgroup' where the device lacks 8-lane subgroups falls back to 'general'); it also
 * turns the conv kernels' subgroup tiles on ('subgroup') or off (the others), and the conv and
 * attention kernels' workgroup tiles on ('tiled', workgroupTiles) or off.
 */
export function matmulKernels(gpu: Pick<GpuContext, 'subgroups' | 'adapter'>): KernelFamily {
  const forced = forcedFamily();
  if (forced === 'general' || forced === 'tiled') return forced;
  if (subgroupTiles(gpu)) return 'subgroup';
  if (forced === 'subgroup') return 'general';
  return gpu.adapter.isSoftware ? 'general' : 'tiled';
}

/**
 * Whether the convolutions (conv2d, conv_transpose2d and the modulated conv: forward and input
 * gradient) and the flash attention kernels run their workgroup-tiled versions (shaders/conv_tiled.wgsl,
 * shaders/attention_tiled.wgsl): exactly where matmul runs its tiled kernel, so hardware GPUs by
 * default and any adapter under SGILO_KERNELS=tiled (or overrideKernelFamily('tiled')).
 */
export function workgroupTiles(gpu: Pick<GpuContext, 'subgroups' | 'adapter'>): boolean {
  return matmulKernels(gpu) === 'tiled';
}

/** An environment variable in Node or Deno (undefined in browsers, or in Deno without --allow-env). */
export function envFlag(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: { env: { get(k: string): string | undefined } } };
  try {
    return g.process?.env?.[name] ?? g.Deno?.env.get(name);
  } catch {
    return undefined; // Deno without --allow-env
  }
}

/** One line naming the adapter, for benchmark tables and logs. */
export function describeAdapter(a: AdapterReport): string {
  // Browsers leave description (and often device) empty for privacy; vendor and architecture remain.
  const name = a.description || a.device || [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown device';
  const kind = a.isSoftware ? 'software' : 'hardware';
  return `${name} [${a.vendor}/${a.architecture}, ${kind}, ${a.runtime}]`;
}
