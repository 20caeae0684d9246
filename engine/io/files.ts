// Reading and writing whole files as bytes in Node and Deno (the CLI's thin file layer). The
// checkpoint readers themselves work on Uint8Array and run anywhere, browsers included; in a
// browser, fetch the bytes (`new Uint8Array(await (await fetch(url)).arrayBuffer())`) instead.

interface DenoFs {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
}

function deno(): DenoFs | undefined {
  return (globalThis as unknown as { Deno?: DenoFs }).Deno;
}

function isNode(): boolean {
  const p = (globalThis as unknown as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

function noFiles(): never {
  throw new Error('file access needs Node or Deno; in a browser, fetch the bytes and pass them to the loader');
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  const d = deno();
  if (d) return d.readFile(path);
  if (!isNode()) noFiles();
  const fs = await import('node:fs/promises');
  const buf = await fs.readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export async function writeFileBytes(path: string, bytes: Uint8Array): Promise<void> {
  const d = deno();
  if (d) return d.writeFile(path, bytes);
  if (!isNode()) noFiles();
  const fs = await import('node:fs/promises');
  await fs.writeFile(path, bytes);
}
