// Kernel registry: an op declares each WGSL entry point it dispatches, with the bindings it will
// pass (name -> read | read_write | uniform). When the pipeline is first needed, the WGSL is
// specialized, parsed with wgsl_reflect, and the entry point's resources are checked against the
// declaration by name, type and access; a mismatch is an error naming the kernel and the binding.
// The bind-group layout is built from that reflection, and uniform structs are packed by member
// name from it too, so the TypeScript side never repeats WGSL offsets by hand.
//
// Reflection needs no device; the active backend (engine/backend.ts) turns the reflected entry
// point into a pipeline (the WebGPU engine) or only counts its dispatches (the counting backend).
//
// Every declaration is known up front (ops declare at module load), which lets the test suite
// assert that each declared entry point was dispatched at least once.

import { WgslReflect, type VariableInfo, type TypeInfo, type StructInfo } from 'wgsl_reflect/wgsl_reflect.module.js';
import { envFlag } from './device.ts';
import { backend, planning, type BindingEntry, type BindingKind, type DeviceBuffer, type KernelProgram } from './backend.ts';
import { shaderText, specialize, withIncludes } from './shader_source.ts';

export type { BindingKind } from './backend.ts';

export interface KernelSpec {
  /** File name under shaders/, without `.wgsl`. */
  shader: string;
  /** WGSL entry point. */
  entry: string;
  bindings: Record<string, BindingKind>;
  /** Values for the `{{SLOT}}`s of the file (see shader_source.specialize). */
  specialize?: Record<string, string | number>;
  /** Distinguishes specializations in counts and logs, e.g. "exp" for unary_forward<exp>. */
  variant?: string;
  /**
   * Values of the WGSL `override` declarations (pipeline-overridable constants), given to
   * createComputePipeline: one shader text serves every tile shape of a kernel that sweeps them.
   */
  constants?: Record<string, number>;
}

/** A uniform block given by WGSL struct member names. Numbers or number arrays (vectors, arrays of vec4). */
export type UniformValues = Record<string, number | readonly number[]>;

export type BindingValue = { readonly buffer: DeviceBuffer } | DeviceBuffer | UniformValues;

interface Compiled extends KernelProgram {
  readonly slots: { name: string; binding: number; kind: BindingKind; struct?: StructInfo; size: number }[];
  readonly workgroupSize: [number, number, number];
}

let debugWgsl = envFlag('SGILO_DEBUG_WGSL') === '1';

/** Prints each pipeline's final (specialized) WGSL when it is created. Also: SGILO_DEBUG_WGSL=1. */
export function setDebugWgsl(on: boolean): void {
  debugWgsl = on;
}

export class Kernel {
  readonly key: string;
  private compiled: Compiled | null = null;

  constructor(readonly spec: KernelSpec) {
    this.key = spec.variant ? `${spec.shader}.${spec.entry}<${spec.variant}>` : `${spec.shader}.${spec.entry}`;
  }

  get workgroupSize(): [number, number, number] {
    return this.compile().workgroupSize;
  }

  /** The WGSL text after specialization. */
  source(): string {
    return specialize(withIncludes(shaderText(this.spec.shader), this.key), this.spec.specialize ?? {}, this.key);
  }

  /** Parses and checks the WGSL once; the backend builds (and caches) its pipeline from the result. */
  private compile(): Compiled {
    if (this.compiled) return this.compiled;
    const code = this.source();
    let reflect: WgslReflect;
    try {
      reflect = new WgslReflect(code);
    } catch (e) {
      throw new Error(`${this.key}: WGSL does not parse: ${(e as Error).message}`);
    }
    const entry = reflect.entry.compute.find((f) => f.name === this.spec.entry);
    if (!entry) throw new Error(`${this.key}: no @compute entry point "${this.spec.entry}" in shaders/${this.spec.shader}.wgsl`);
    const slots = checkBindings(this.key, this.spec.bindings, entry.resources);
    if (debugWgsl) console.log(`// ---- ${this.key} ----\n${code}`);
    const wg = (entry.workgroupSize ?? [1, 1, 1]) as unknown[];
    // A size named by an override (`@workgroup_size(WG_X)`) is reflected as its name: take its value.
    const size = (d: unknown): number => (typeof d === 'number' ? d : d === undefined ? 1 : (this.spec.constants?.[String(d)] ?? Number.NaN));
    this.compiled = { key: this.key, entry: this.spec.entry, code, constants: this.spec.constants, slots, workgroupSize: [size(wg[0]), size(wg[1]), size(wg[2])], gpu: null };
    return this.compiled;
  }

  /** Records one dispatch of `workgroups` with the named bindings. */
  dispatch(bindings: Record<string, BindingValue>, workgroups: readonly number[]): void {
    const eng = backend();
    const c = this.compile();
    for (const name of Object.keys(bindings)) {
      if (!c.slots.some((s) => s.name === name)) throw new Error(`${this.key}: unknown binding "${name}" (declared: ${c.slots.map((s) => s.name).join(', ')})`);
    }
    const entries: BindingEntry[] = c.slots.map((s) => {
      const value = bindings[s.name];
      if (value === undefined) throw new Error(`${this.key}: binding "${s.name}" was not given`);
      if (s.kind === 'uniform') return { binding: s.binding, resource: eng.placeUniform(packUniform(this.key, s.struct!, s.size, value as UniformValues)) };
      const buffer = 'buffer' in value && !(value instanceof Array) ? (value as { buffer: DeviceBuffer }).buffer : (value as DeviceBuffer);
      if (!buffer || typeof (buffer as DeviceBuffer).size !== 'number') throw new Error(`${this.key}: binding "${s.name}" needs a tensor or GPUBuffer`);
      return { binding: s.binding, resource: { buffer } };
    });
    // WebGPU forbids a buffer being writable and bound again in one dispatch; say which bindings.
    entries.forEach((e, i) => {
      const buf = e.resource.buffer;
      if (c.slots[i].kind !== 'read_write') return;
      const other = entries.findIndex((f, j) => j !== i && f.resource.buffer === buf);
      if (other >= 0) throw new Error(`${this.key}: "${c.slots[i].name}" is written but its buffer is also bound as "${c.slots[other].name}" (an op may not write its input in place)`);
    });
    const [x, y = 1, z = 1] = workgroups;
    const maxDim = eng.gpu.limits.maxComputeWorkgroupsPerDimension;
    for (const n of [x, y, z]) {
      if (!Number.isInteger(n) || n < 0 || n > maxDim) throw new RangeError(`${this.key}: workgroup count ${n} is outside [0, ${maxDim}] (grid ${x}x${y}x${z})`);
    }
    if (x * y * z === 0) return;
    eng.dispatch(c, entries, x, y, z);
    // Coverage counts only what ran on a device (a planning run dispatches nothing).
    if (!eng.planning) dispatchCounts.set(this.key, (dispatchCounts.get(this.key) ?? 0) + 1);
  }
}

const declared = new Map<string, Kernel>();
const dispatchCounts = new Map<string, number>();
/**
 * Kernels first declared while a planning backend was active (e.g. variants for the GPU a memory
 * plan describes, not for this device), until something declares them outside planning.
 */
const declaredWhilePlanning = new Set<string>();

/** Declares a kernel (idempotent: the same spec returns the same Kernel). */
export function defineKernel(spec: KernelSpec): Kernel {
  const k = new Kernel(spec);
  const existing = declared.get(k.key);
  if (existing) {
    if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) throw new Error(`kernel ${k.key} declared twice with different specs`);
    if (!planning()) declaredWhilePlanning.delete(k.key);
    return existing;
  }
  declared.set(k.key, k);
  if (planning()) declaredWhilePlanning.add(k.key);
  return k;
}

/** Kernels declared for this device (what kernel coverage asks to have been dispatched). */
export function declaredKernels(): string[] {
  return [...declared.keys()].filter((k) => !declaredWhilePlanning.has(k)).sort();
}

/** Dispatches per kernel (entry point and variant) since the process started or the last reset. */
export function dispatchCountsByKernel(): Map<string, number> {
  return new Map(dispatchCounts);
}

export function resetDispatchCounts(): void {
  dispatchCounts.clear();
}

/** Grid for `n` workgroups in 1D, folded into y when over the per-dimension limit. */
export function grid1d(workgroups: number): [number, number, number] {
  const maxDim = backend().gpu.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= maxDim) return [workgroups, 1, 1];
  const y = Math.ceil(workgroups / maxDim);
  if (y > maxDim) throw new RangeError(`grid1d: ${workgroups} workgroups exceed ${maxDim}^2`);
  return [Math.ceil(workgroups / y), y, 1];
}

function checkBindings(key: string, declaredBindings: Record<string, BindingKind>, resources: VariableInfo[]): Compiled['slots'] {
  const slots: Compiled['slots'] = [];
  const seen = new Set<string>();
  for (const r of resources) {
    if (r.group !== 0) throw new Error(`${key}: binding "${r.name}" is in group ${r.group}; kernels use group 0 only`);
    const kind = declaredBindings[r.name];
    if (kind === undefined) throw new Error(`${key}: the WGSL entry uses binding "${r.name}" that the op does not declare`);
    const actual: BindingKind | null = r.resourceType === 0 ? 'uniform' : r.resourceType === 1 ? (r.access === 'read' ? 'read' : 'read_write') : null;
    if (actual === null) throw new Error(`${key}: binding "${r.name}" is not a buffer (textures and samplers are not used by the engine)`);
    if (actual !== kind) throw new Error(`${key}: binding "${r.name}" is declared ${kind} by the op but is ${actual} in the WGSL`);
    seen.add(r.name);
    slots.push({ name: r.name, binding: r.binding, kind, struct: actual === 'uniform' ? (r.type as StructInfo) : undefined, size: r.type.size });
  }
  for (const name of Object.keys(declaredBindings)) {
    if (!seen.has(name)) throw new Error(`${key}: the op declares binding "${name}" but the WGSL entry point does not use it`);
  }
  return slots;
}

function scalarKind(t: TypeInfo): 'u32' | 'i32' | 'f32' | null {
  const n = t.name;
  if (n === 'u32' || n === 'i32' || n === 'f32') return n;
  return null;
}

/** Element kind and count of a vector/array type, e.g. vec4u -> [u32, 4], array<vec4f, 2> -> [f32, 8]. */
function flatKind(key: string, name: string, t: TypeInfo): { kind: 'u32' | 'i32' | 'f32'; count: number } {
  const s = scalarKind(t);
  if (s) return { kind: s, count: 1 };
  const vec = /^vec([234])(?:<(u32|i32|f32)>|([uif]))$/.exec(t.getTypeName());
  if (vec) {
    const kind = (vec[2] ?? { u: 'u32', i: 'i32', f: 'f32' }[vec[3] as 'u' | 'i' | 'f']) as 'u32' | 'i32' | 'f32';
    return { kind, count: Number(vec[1]) };
  }
  if (t.isArray) {
    const arr = t as TypeInfo & { format: TypeInfo; count: number };
    const inner = flatKind(key, name, arr.format);
    if (inner.count !== 4 && inner.count !== 1) throw new Error(`${key}: uniform member "${name}" must be an array of vec4 (16-byte stride)`);
    return { kind: inner.kind, count: inner.count * arr.count };
  }
  throw new Error(`${key}: uniform member "${name}" has type ${t.getTypeName()}, which the packer does not support`);
}

function packUniform(key: string, struct: StructInfo, size: number, values: UniformValues): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(size / 16) * 16);
  const view = new DataView(bytes.buffer);
  const members = struct.members ?? [];
  for (const name of Object.keys(values)) {
    if (!members.some((m) => m.name === name)) throw new Error(`${key}: uniform has no member "${name}" (members: ${members.map((m) => m.name).join(', ')})`);
  }
  for (const m of members) {
    const v = values[m.name];
    if (v === undefined) throw new Error(`${key}: uniform member "${m.name}" was not given`);
    const { kind, count } = flatKind(key, m.name, m.type);
    const list = typeof v === 'number' ? [v] : v;
    if (list.length > count || (count === 1 && list.length !== 1)) throw new Error(`${key}: uniform member "${m.name}" holds ${count} value(s), got ${list.length}`);
    for (let i = 0; i < list.length; i++) {
      const off = m.offset + 4 * i;
      const x = list[i];
      if (kind === 'f32') view.setFloat32(off, x, true);
      else {
        if (!Number.isInteger(x)) throw new Error(`${key}: uniform member "${m.name}" is ${kind} but got ${x}`);
        if (kind === 'u32') view.setUint32(off, x, true);
        else view.setInt32(off, x, true);
      }
    }
  }
  return bytes;
}
