// A pickle interpreter for the subset that state dicts use (protocols 2-5). It EXECUTES NOTHING:
// GLOBAL / STACK_GLOBAL / INST may only name entries of the caller's allow-list (`globals`), whose
// implementations are plain data constructors written in TypeScript; any other name is refused
// with UnsafePickleError before anything else happens. EXT1/2/4 (the extension registry, another
// way to name a global) are refused too.
//
// Python value -> JS value
//   None, bool, float, str          null, boolean, number, string
//   int                             number when |v| <= 2^53, else bigint
//   bytes / bytearray               Uint8Array (a copy)
//   list, set, frozenset            array
//   tuple                           frozen array
//   dict, OrderedDict               plain object; keys as strings (ints -> "4"; tuples -> "(1, 2)");
//                                   set with defineProperty, so "__proto__" is an ordinary own key.
//                                   BUILD attributes (a state dict's `_metadata`) are non-enumerable.
//   an allow-listed global          a GlobalRef (its `impl.call` runs on REDUCE / NEWOBJ)
//   BUILD                           attributes of a dict (see build), or a PickleObject's own build
// Limits: every length is checked against the bytes left before anything is allocated; the result
// is checked to be acyclic and at most `maxDepth` containers deep (default 1000).

import { CheckpointFormatError, UnsafePickleError, UnsupportedCheckpointError } from './errors.ts';

export interface GlobalImpl {
  /** Runs for REDUCE / NEWOBJ with the argument tuple; absent: the global is data only. */
  call?: (args: readonly unknown[]) => unknown;
  /** Free data for the caller (e.g. a storage type's dtype). */
  data?: unknown;
}

/**
 * A data object an allow-listed constructor returns that takes a BUILD state itself (a numpy dtype's
 * byte order, for instance); BUILD on anything else but a dict is a format error.
 */
export abstract class PickleObject {
  abstract build(state: unknown): void;
}

export class GlobalRef {
  constructor(readonly qualname: string, readonly impl: GlobalImpl) {}
}

export interface UnpickleOptions {
  /** The allow-list: `module.name` -> implementation. */
  globals: ReadonlyMap<string, GlobalImpl>;
  /** BINPERSID / PERSID; without it a persistent id is a format error. */
  persistentLoad?: (pid: unknown) => unknown;
  maxDepth?: number;
}

// Dicts carry a non-enumerable symbol mark (invisible to keys, entries and JSON). Not a WeakSet:
// V8 marks WeakSet keys that hold each other (a deeply nested hostile pickle) in quadratic time.
const DICT = Symbol('pickle.dict');

export function createDict(): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  Object.defineProperty(d, DICT, { value: true });
  return d;
}
/**
 * A record: a dict whose BUILD state becomes its (enumerable) items, for plain attribute bags such as
 * argparse.Namespace, read as the record of its fields.
 */
const RECORD = Symbol('pickle.record');
export function createRecord(): Record<string, unknown> {
  const d = createDict();
  Object.defineProperty(d, RECORD, { value: true });
  return d;
}

export const isPickleDict = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && (v as { [DICT]?: boolean })[DICT] === true;
/** Lists and sets are mutable arrays; tuples and frozensets are frozen ones. */
const isList = (v: unknown): v is unknown[] => Array.isArray(v) && !Object.isFrozen(v);

export function setKey(d: Record<string, unknown>, key: unknown, value: unknown, enumerable = true): void {
  Object.defineProperty(d, keyString(key), { value, enumerable, writable: true, configurable: true });
}

function keyString(k: unknown): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
  if (k === null) return 'None';
  if (Array.isArray(k) && Object.isFrozen(k)) return `(${k.map(keyString).join(', ')})`;
  throw new CheckpointFormatError(`pickle: unsupported dict key of type ${typeof k}`);
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Python 2 str bytes, as torch reads them (encoding='latin1': each byte is one code point). */
function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** Unpickles one pickle starting at `offset`; returns the value and the offset after STOP. */
export function unpickle(bytes: Uint8Array, offset: number, opts: UnpickleOptions): { value: unknown; end: number } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = offset;
  let op = 0;
  let opAt = offset;

  const fail = (msg: string): never => {
    throw new CheckpointFormatError(`pickle: ${msg} (opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt})`);
  };
  const need = (n: number | bigint) => {
    const left = bytes.length - p;
    if (typeof n === 'bigint' ? n > BigInt(left) : n < 0 || n > left) fail(`declared length ${n} exceeds the ${left} bytes left (truncated?)`);
    return Number(n);
  };
  const take = (n: number | bigint) => {
    const len = need(n);
    p += len;
    return bytes.subarray(p - len, p);
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), (p += 2), v.getUint16(p - 2, true));
  const u32 = () => (need(4), (p += 4), v.getUint32(p - 4, true));
  const i32 = () => (need(4), (p += 4), v.getInt32(p - 4, true));
  const u64 = () => (need(8), (p += 8), v.getBigUint64(p - 8, true));
  const utf8 = (b: Uint8Array) => {
    try {
      return utf8Decoder.decode(b);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = () => {
    const nl = bytes.indexOf(0x0a, p);
    if (nl < 0) fail('unterminated text line');
    const s = utf8(bytes.subarray(p, nl));
    p = nl + 1;
    return s;
  };
  const pop = () => (stack.length > (marks.at(-1) ?? 0) ? stack.pop() : fail('stack underflow'));
  const top = () => (stack.length > (marks.at(-1) ?? 0) ? stack[stack.length - 1] : fail('stack underflow'));
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK on the stack');
    return stack.splice(m!);
  };
  const global = (module: string, name: string) => {
    const qualname = `${module}.${name}`;
    const impl = opts.globals.get(qualname);
    if (!impl) throw new UnsafePickleError(qualname);
    return new GlobalRef(qualname, impl);
  };
  const call = (fn: unknown, args: unknown) => {
    if (!(fn instanceof GlobalRef)) return fail(`cannot call a ${describe(fn)}`);
    if (!fn.impl.call) return fail(`${fn.qualname} is not callable`);
    if (!Array.isArray(args)) return fail(`arguments of ${fn.qualname} are a ${describe(args)}, not a tuple`);
    return fn.impl.call(args);
  };
  const int = (big: bigint) => (big >= -(2n ** 53n) && big <= 2n ** 53n ? Number(big) : big);
  const long = (b: Uint8Array) => {
    if (b.length > 64) throw new UnsupportedCheckpointError(`pickle: integer of ${b.length} bytes at byte ${opAt}`);
    let x = 0n;
    for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
    if (b.length && b[b.length - 1] & 0x80) x -= 1n << BigInt(8 * b.length); // two's complement
    return int(x);
  };
  const asList = (x: unknown) => (isList(x) ? x : fail(`APPEND to a ${describe(x)}`));
  const asDict = (x: unknown) => (isPickleDict(x) ? x : fail(`SETITEM on a ${describe(x)}`));
  const setItems = (d: Record<string, unknown>, kv: unknown[]) => {
    if (kv.length % 2) fail('odd number of items for SETITEMS / DICT');
    for (let i = 0; i < kv.length; i += 2) setKey(d, kv[i], kv[i + 1]);
  };
  const persistent = (pid: unknown) => (opts.persistentLoad ? opts.persistentLoad(pid) : fail('persistent id without a persistent loader'));

  for (;;) {
    opAt = p;
    if (p >= bytes.length) fail('ran out of bytes before STOP (truncated pickle)');
    op = bytes[p++];
    switch (op) {
      case 0x80: { const proto = u8(); if (proto > 5) throw new UnsupportedCheckpointError(`pickle: protocol ${proto}`); break; } // PROTO
      case 0x95: need(u64()); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: return { value: finish(pop(), opts.maxDepth ?? 1000), end: p }; // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: stack.push(long(take(u8()))); break; // LONG1
      case 0x8b: stack.push(long(take(i32()))); break; // LONG4
      case 0x47: stack.push((need(8), (p += 8), v.getFloat64(p - 8, false))); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(take(u64()))); break; // BINUNICODE8
      case 0x54: stack.push(latin1(take(i32()))); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(latin1(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(take(u64()).slice()); break; // BINBYTES8, BYTEARRAY8
      case 0x7d: stack.push(createDict()); break; // EMPTY_DICT
      case 0x64: { const d = createDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x5d: case 0x8f: stack.push([]); break; // EMPTY_LIST, EMPTY_SET
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x91: stack.push(Object.freeze(popMark())); break; // FROZENSET
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(Object.freeze(popMark())); break; // TUPLE
      case 0x85: stack.push(Object.freeze([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push(Object.freeze([pop(), b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push(Object.freeze([pop(), b, c])); break; } // TUPLE3
      case 0x61: { const x = pop(); asList(top()).push(x); break; } // APPEND
      case 0x65: case 0x90: { const xs = popMark(); const l = asList(top()); for (const x of xs) l.push(x); break; } // APPENDS, ADDITEMS
      case 0x73: { const val = pop(); const key = pop(); setKey(asDict(top()), key, val); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(asDict(top()), kv); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo slot ${i} was never set`);
        stack.push(memo.get(i));
        break;
      }
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x69: { const module = line(); global(module, line()); return fail('INST is not supported'); } // INST
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        if (!isPickleDict(kwargs) || Object.keys(kwargs).length) fail('NEWOBJ_EX with keyword arguments');
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: build(pop(), top(), fail); break; // BUILD
      case 0x51: stack.push(persistent(pop())); break; // BINPERSID
      case 0x50: stack.push(persistent(line())); break; // PERSID
      case 0x82: case 0x83: case 0x84: // EXT1, EXT2, EXT4
        throw new UnsafePickleError(`extension code ${op === 0x82 ? u8() : op === 0x83 ? u16() : i32()}`, 'the copyreg extension registry names arbitrary globals');
      default:
        fail('unsupported or invalid opcode');
    }
  }
}

/** BUILD on a dict sets attributes (not items): non-enumerable, so key listings stay the items. */
function build(state: unknown, target: unknown, fail: (m: string) => never): void {
  if (target instanceof PickleObject) return target.build(state);
  if (!isPickleDict(target)) fail(`BUILD on a ${describe(target)}`);
  const t = target as Record<string, unknown>;
  const record = (t as { [RECORD]?: boolean })[RECORD] === true;
  const parts = Array.isArray(state) && Object.isFrozen(state) ? state : [state]; // (state, slotstate)
  for (const s of parts) {
    if (s === null) continue;
    if (!isPickleDict(s)) fail(`BUILD state is a ${describe(s)}`);
    for (const [k, x] of Object.entries(s as Record<string, unknown>)) if (!Object.hasOwn(t, k)) setKey(t, k, x, record);
  }
}

export function describe(x: unknown): string {
  if (x === null) return 'None';
  if (x instanceof GlobalRef) return `global ${x.qualname}`;
  if (Array.isArray(x)) return Object.isFrozen(x) ? 'tuple' : 'list';
  if (isPickleDict(x)) return 'dict';
  if (x instanceof Uint8Array) return 'bytes';
  return typeof x;
}

/** Rejects cycles and nesting deeper than maxDepth; walks each container once (shared ones too). */
function finish(root: unknown, maxDepth: number): unknown {
  const done = new Set<object>();
  const path = new Set<object>();
  const visit = (x: unknown, depth: number): void => {
    if (typeof x !== 'object' || x === null || done.has(x)) return;
    const kids = Array.isArray(x) ? x : isPickleDict(x) ? Object.values(x) : null;
    if (!kids) return;
    if (path.has(x)) throw new CheckpointFormatError('pickle: the object graph has a cycle');
    if (depth > maxDepth) throw new CheckpointFormatError(`pickle: containers nested deeper than ${maxDepth}`);
    path.add(x);
    for (const k of kids) visit(k, depth + 1);
    path.delete(x);
    done.add(x);
  };
  visit(root, 0);
  return root;
}
