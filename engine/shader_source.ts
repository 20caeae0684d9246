// WGSL files live in `shaders/<name>.wgsl` and are the single source of truth for bindings.
// Loading them as text in every runtime:
//   Node  -> fs.readFileSync next to this module (synchronous, on first use);
//   Deno  -> Deno.readTextFileSync (synchronous, on first use);
//   browser -> a bundle registers the texts with `registerShaderTexts` (esbuild's text loader),
//              or `preloadShaders` fetches them next to the bundle.

const texts = new Map<string, string>();

function shaderUrl(name: string): URL {
  return new URL(`../shaders/${name}.wgsl`, import.meta.url);
}

export function registerShaderTexts(map: Record<string, string>): void {
  for (const [name, text] of Object.entries(map)) texts.set(name, text);
}

export async function preloadShaders(names: string[]): Promise<void> {
  await Promise.all(
    names
      .filter((n) => !texts.has(n))
      .map(async (n) => {
        const res = await fetch(shaderUrl(n));
        if (!res.ok) throw new Error(`shader "${n}": HTTP ${res.status} fetching ${shaderUrl(n).href}`);
        texts.set(n, await res.text());
      }),
  );
}

type SyncReader = (url: URL) => string;

function syncReader(): SyncReader | null {
  const g = globalThis as {
    Deno?: { readTextFileSync(u: URL): string };
    process?: { getBuiltinModule?(id: string): unknown };
  };
  if (g.Deno) return (u) => g.Deno!.readTextFileSync(u);
  const fs = g.process?.getBuiltinModule?.('node:fs') as { readFileSync(u: URL, enc: string): string } | undefined;
  if (fs) return (u) => fs.readFileSync(u, 'utf8');
  return null;
}

export function shaderText(name: string): string {
  const known = texts.get(name);
  if (known !== undefined) return known;
  const read = syncReader();
  if (!read) throw new Error(`shader "${name}" is not loaded: in a browser call preloadShaders() or registerShaderTexts() first`);
  let text: string;
  try {
    text = read(shaderUrl(name));
  } catch (e) {
    throw new Error(`shader "${name}": cannot read ${shaderUrl(name).href}: ${(e as Error).message}`);
  }
  texts.set(name, text);
  return text;
}

/**
 * The one specialization mechanism: `{{NAME}}` slots in the WGSL text are replaced by the given
 * values. Every slot must be filled and every value must have a slot, so a typo fails loudly.
 */
export function specialize(text: string, values: Record<string, string | number>, what: string): string {
  const slots = new Set([...text.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]));
  for (const s of slots) if (!(s in values)) throw new Error(`${what}: template slot {{${s}}} has no value`);
  for (const k of Object.keys(values)) if (!slots.has(k)) throw new Error(`${what}: value for "${k}" but the template has no slot {{${k}}}`);
  return text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => String(values[k]));
}

/**
 * WGSL has no includes: a line `// #include <name>` is replaced by the text of shaders/<name>.wgsl
 * (helpers several kernel files share, e.g. index_math). One level deep; an unknown name fails
 * like any missing shader.
 */
export function withIncludes(text: string, what: string): string {
  return text.replace(/^\/\/ #include <(\w+)>$/gm, (_, name: string) => {
    const included = shaderText(name);
    if (/^\/\/ #include </m.test(included)) throw new Error(`${what}: shaders/${name}.wgsl includes another file (one level only)`);
    return included.trimEnd();
  });
}
