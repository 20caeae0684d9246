// `sgilo serve [--port 8080] [--host 127.0.0.1]`: the web page (cli/web/) on a small static server.
// At start the page's program (cli/web/main.ts and everything it imports from engine/, nets/,
// samplers/) is bundled in memory with esbuild's JS API, every shaders/*.wgsl text put into the
// bundle (the browser has no file system to read them from); then node:http serves
//   /, /index.html, /style.css     cli/web/
//   /main.js, /main.js.map         the bundle
//   /models/...                    the shipped model files (read from disk on each request); a
//                                  folder (path ending in /) gives the JSON list of its files
// and nothing else (GET and HEAD only; paths are confined to models/). No dependency beyond esbuild,
// which the TypeScript loader already uses.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WEB = join(ROOT, 'cli', 'web');
const MODELS = join(ROOT, 'models');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
  '.pt': 'application/octet-stream',
};

export const mimeType = (path: string) => MIME[extname(path).toLowerCase()] ?? 'application/octet-stream';

/** The page's files by URL path: index.html and style.css as they are, main.js bundled. */
export async function bundleWebPage(): Promise<Map<string, Uint8Array>> {
  const shaders: Record<string, string> = {};
  for (const f of (await readdir(join(ROOT, 'shaders'))).sort()) {
    if (f.endsWith('.wgsl')) shaders[f.slice(0, -'.wgsl'.length)] = await readFile(join(ROOT, 'shaders', f), 'utf8');
  }
  const result = await build({
    entryPoints: [join(WEB, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: join(WEB, 'main.js'), // a name only: write is false
    write: false,
    sourcemap: 'linked',
    define: { __SGILO_SHADERS__: JSON.stringify(shaders) },
    logLevel: 'silent',
  });
  const files = new Map<string, Uint8Array>();
  for (const out of result.outputFiles) files.set(`/${out.path.split(/[\\/]/).pop()}`, out.contents);
  for (const f of ['index.html', 'style.css']) files.set(`/${f}`, new Uint8Array(await readFile(join(WEB, f))));
  return files;
}

export interface WebServer {
  /** e.g. http://127.0.0.1:8080/ */
  url: string;
  close(): Promise<void>;
}

/**
 * A file under models/ for a URL path, or a folder's file names (for a path ending in /), or null
 * when the path leaves models/ or names neither.
 */
async function modelFile(urlPath: string): Promise<{ file: string } | { names: string[] } | null> {
  const path = normalize(join(ROOT, urlPath));
  if (!path.startsWith(MODELS + sep)) return null;
  try {
    if (urlPath.endsWith('/')) {
      const entries = await readdir(path, { withFileTypes: true });
      return { names: entries.filter((e) => e.isFile()).map((e) => e.name).sort() };
    }
    return (await stat(path)).isFile() ? { file: path } : null;
  } catch {
    return null;
  }
}

function send(res: ServerResponse, req: IncomingMessage, code: number, type: string, body: Uint8Array): void {
  res.writeHead(code, { 'content-type': type, 'content-length': body.byteLength, 'cache-control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Bundles the page and starts serving it; port 0 picks a free port. */
export async function startWebServer(options: { port?: number; host?: string } = {}): Promise<WebServer> {
  const page = await bundleWebPage();
  const notFound = (req: IncomingMessage, res: ServerResponse, why: string) => send(res, req, 404, MIME['.txt'], new TextEncoder().encode(`404: ${why}\n`));
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
      } catch {
        return notFound(req, res, 'malformed path');
      }
      if (path === '/') path = '/index.html';
      const asset = page.get(path);
      if (asset) return send(res, req, 200, mimeType(path), asset);
      const found = path.startsWith('/models/') ? await modelFile(path) : null;
      if (!found) return notFound(req, res, `${path} is not part of the page or a file or folder under models/`);
      if ('names' in found) return send(res, req, 200, MIME['.json'], new TextEncoder().encode(JSON.stringify(found.names)));
      send(res, req, 200, mimeType(found.file), new Uint8Array(await readFile(found.file)));
    })().catch((e: Error) => {
      if (!res.headersSent) send(res, req, 500, MIME['.txt'], new TextEncoder().encode(`500: ${e.message}\n`));
      else res.destroy(e);
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

export async function serveCommand(opts: { port?: number; host?: string }): Promise<number> {
  const server = await startWebServer(opts);
  console.log(`serving the SGILO page at ${server.url} (Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
