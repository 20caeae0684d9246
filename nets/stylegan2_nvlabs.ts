import type { LoadedGenerator } from './generator_source.ts';
export function isNVlabsPickle(_bytes: Uint8Array): boolean {
  return false;
}
export async function readNVlabsGenerator(_bytes: Uint8Array, _o: { training: boolean; clamp: boolean }): Promise<LoadedGenerator> {
  throw new Error('todo');
}
