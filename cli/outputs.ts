// Where commands write: one output per command (a folder or a file), checked before any work and
// written atomically. A folder output is filled under a sibling staging name and renamed into place
// at the end; a file is written to a temporary name and renamed. An existing non-empty output is
// refused unless --force, and then replaced whole (never mixed with the previous run's files). A
// failed run removes its staging folder or temporary file, so no partial output is ever left.
// node:fs works in Node and in Deno (its Node compatibility layer), so both entries share this.

import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './args.ts';

/** Pseudo file systems that hold no files: a write there fails, or hangs (mkdir -p on /proc). */
const SPECIAL = ['/proc', '/sys', '/dev'];

export interface Output {
  /** Where the output ends up. */
  final: string;
  /** Where to write now: the staging folder (folder outputs) or the temporary file name (file outputs). */
  path: string;
  kind: 'dir' | 'file';
  /** Moves what was written into place (replacing an old output whole). */
  commit(): void;
  /** Removes what was written (failed runs). */
  abort(): void;
}

const suffix = () => `.partial-${(globalThis as { process?: { pid?: number } }).process?.pid ?? 0}-${Math.random().toString(36).slice(2, 8)}`;

/** The nearest existing ancestor of an absolute path (the path itself if it exists). */
function existingAncestor(p: string): string {
  let cur = p;
  while (!existsSync(cur)) {
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return cur;
}

/**
 * Checks an output path before any work: not on a special file system, its parent a folder that
 * can be written, and (unless force) nothing there yet, or an empty folder. Throws a UsageError
 * naming the flag.
 */
export function checkOutputPath(flag: string, path: string, kind: 'dir' | 'file', force: boolean): string {
  const abs = resolve(path);
  const anc = existingAncestor(abs);
  let real: string;
  try {
    real = join(realpathSync(anc), abs.slice(anc.length));
  } catch {
    real = abs;
  }
  const special = SPECIAL.find((s) => real === s || real.startsWith(`${s}/`));
  if (special) throw new UsageError(`${flag} ${path}: ${special} is a special file system, not a place for output files; choose a folder on a disk`);
  if (anc !== abs && !statSync(anc).isDirectory()) throw new UsageError(`${flag} ${path}: ${anc} is a file, not a folder`);
  if (existsSync(abs)) {
    const st = statSync(abs);
    if (kind === 'dir' && !st.isDirectory()) throw new UsageError(`${flag} ${path}: exists and is a file; the output is a folder`);
    if (kind === 'file' && st.isDirectory()) throw new UsageError(`${flag} ${path}: is a folder; the output is a file`);
    const empty = kind === 'dir' && readdirSync(abs).length === 0;
    if (!empty && !force) throw new UsageError(`${flag} ${path}: exists${kind === 'dir' ? ' and is not empty' : ''}; give --force to replace it (whole), or another ${flag}`);
  }
  return abs;
}

/** Checks the output and creates its staging folder or probes its temporary file (so an unwritable place fails now). */
export function prepareOutput(flag: string, path: string, kind: 'dir' | 'file', force: boolean): Output {
  const final = checkOutputPath(flag, path, kind, force);
  const parent = dirname(final);
  const staged = kind === 'dir' ? `${final}${suffix()}` : join(parent, `.${basename(final)}${suffix()}`);
  try {
    mkdirSync(parent, { recursive: true });
    if (kind === 'dir') mkdirSync(staged);
    else writeFileSync(staged, new Uint8Array(0));
  } catch (e) {
    throw new UsageError(`${flag} ${path}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (kind === 'file') rmSync(staged, { force: true });
  let done = false;
  return {
    final,
    path: staged,
    kind,
    commit() {
      if (done) return;
      done = true;
      if (kind === 'file') {
        // A command that published its file itself (writeAtomic to final) leaves nothing here.
        if (existsSync(staged)) renameSync(staged, final);
        return;
      }
      // The old output moves aside first, so a crash between the two renames loses nothing.
      const old = existsSync(final) ? `${final}${suffix()}` : undefined;
      if (old) renameSync(final, old);
      renameSync(staged, final);
      if (old) rmSync(old, { recursive: true, force: true });
    },
    abort() {
      if (done) return;
      done = true;
      rmSync(staged, { recursive: true, force: true });
    },
  };
}

/** Writes a file atomically: a temporary name in the same folder, then a rename. */
export function writeAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}${suffix()}`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
