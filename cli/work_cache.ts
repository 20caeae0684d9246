// A resumable command's record of finished work: one JSON line per finished unit (a tuning trial,
// an experiment cell), keyed by everything that determines its result. A rerun with the same
// settings reads the lines back and skips that work; a changed setting makes a new key, so nothing
// stale is reused. The record is a plain file beside the outputs (default out/<command>-work/), not
// inside the staged output folder, so that an interrupted run keeps it.

import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { UsageError } from './args.ts';
import { join } from 'node:path';

export class WorkCache<T> {
  private readonly done = new Map<string, T>();
  readonly file: string;

  constructor(folder: string, name: string) {
    if (existsSync(folder) && !statSync(folder).isDirectory()) throw new UsageError(`--work ${folder}: is a file, not a folder`);
    try {
      mkdirSync(folder, { recursive: true });
    } catch (e) {
      throw new UsageError(`--work ${folder}: cannot make the folder (${(e as Error).message})`);
    }
    this.file = join(folder, name);
    if (existsSync(this.file)) {
      for (const line of readFileSync(this.file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const { key, value } = JSON.parse(line);
          this.done.set(key, value);
        } catch {
          // A line cut short by an interrupted write: that unit is simply redone.
        }
      }
    }
  }

  get size(): number {
    return this.done.size;
  }

  /** The recorded value of `key`, if any. */
  lookup(key: unknown): T | undefined {
    return this.done.get(JSON.stringify(key));
  }

  /** Records `value` under `key` (appended to the file at once). */
  record(key: unknown, value: T): void {
    const k = JSON.stringify(key);
    this.done.set(k, value);
    appendFileSync(this.file, JSON.stringify({ key: k, value }) + '\n');
  }

  /** The recorded value of `key`, or the result of `compute` (recorded before it is returned). */
  async get(key: unknown, compute: () => Promise<T>): Promise<{ value: T; cached: boolean }> {
    const k = JSON.stringify(key);
    if (this.done.has(k)) return { value: this.done.get(k)!, cached: true };
    const value = await compute();
    this.record(key, value);
    return { value, cached: false };
  }
}
