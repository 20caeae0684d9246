// The argument layer of every command: a command declares its positionals and options once (type,
// default, range, help text; cli/commands.ts), and this file parses argv against the declaration,
// rejects unknown flags, out-of-range values and conflicts before any work, and prints the help.
// Pure TypeScript with no Node or browser API: the Node CLI, the Deno entry and the web page
// (which checks its form against the same declarations) all use it.

export type OptionValue = string | number | boolean | string[];

export interface OptionDecl {
  /** The flag without the leading dashes, e.g. "steps". */
  name: string;
  /** int / number: a finite number (int: an integer); flag: a switch without a value; list: repeatable. */
  type: 'int' | 'number' | 'string' | 'flag' | 'enum' | 'list';
  help: string;
  default?: string | number | boolean;
  /** Inclusive bounds of int / number options. */
  min?: number;
  max?: number;
  /** The lower bound itself is excluded (e.g. a learning rate > 0). */
  minExclusive?: boolean;
  choices?: readonly string[];
  /** The value's name in the help, e.g. "N" or "PATH". */
  value?: string;
  /** A further check of the value; returns an error message or undefined. */
  check?: (v: string) => string | undefined;
}

export interface PositionalDecl {
  name: string;
  help: string;
  optional?: boolean;
  /** Takes every remaining positional argument (at least one unless optional). */
  rest?: boolean;
  choices?: readonly string[];
}

export interface CommandDecl {
  name: string;
  summary: string;
  positionals?: PositionalDecl[];
  options: OptionDecl[];
  /** One or more example command lines (without the leading "sgilo "). */
  examples: string[];
  /** Where the command writes; adds --out and --force. `dir`: a folder, `file`: one file. */
  output?: { kind: 'dir' | 'file'; default: string; help?: string };
  /** More help text (printed after the options). */
  notes?: string;
  /** Conflicting or dependent options; returns an error message or undefined. */
  conflicts?: (p: Parsed) => string | undefined;
}

export interface Parsed {
  command: string;
  positionals: string[];
  /** Every declared option with its value or default (flags false, lists []). */
  values: Record<string, OptionValue | undefined>;
  /** The options given on the command line (not defaults). */
  given: Set<string>;
  help: boolean;
  verbose: boolean;
  force: boolean;
}

/** A mistake in the command line: printed with a pointer to --help, exit code 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Options every command takes. */
export const COMMON_OPTIONS: OptionDecl[] = [
  { name: 'help', type: 'flag', help: 'print this help and exit' },
  { name: 'verbose', type: 'flag', help: "show the GPU driver's warnings (Dawn's limit notices) and more detail" },
];

/** The options of a command, the common ones and --out / --force included. */
export function allOptions(cmd: CommandDecl): OptionDecl[] {
  const out: OptionDecl[] = [...cmd.options];
  if (cmd.output) {
    const what = cmd.output.kind === 'dir' ? 'output folder' : 'output file';
    out.push({ name: 'out', type: 'string', value: 'PATH', default: cmd.output.default, help: cmd.output.help ?? `${what}; refused if it exists and is not empty, unless --force` });
    out.push({ name: 'force', type: 'flag', help: `replace an existing ${what} (whole, never mixed with the old one)` });
  }
  return [...out, ...COMMON_OPTIONS];
}

const rangeText = (o: OptionDecl): string => {
  const lo = o.min === undefined ? undefined : `${o.minExclusive ? '>' : '>='} ${o.min}`;
  const hi = o.max === undefined ? undefined : `<= ${o.max}`;
  const kind = o.type === 'int' ? 'an integer' : 'a number';
  return [lo, hi].filter(Boolean).length ? `${kind} ${[lo, hi].filter(Boolean).join(' and ')}` : kind;
};

/** The allowed values of an option, in words (used by errors and the help). */
export function allowed(o: OptionDecl): string {
  if (o.type === 'int' || o.type === 'number') return rangeText(o);
  if (o.type === 'enum') return `one of ${o.choices!.join(', ')}`;
  if (o.type === 'flag') return 'no value';
  return 'a value';
}

/** Checks one option value; returns the typed value or throws a UsageError naming the flag. */
export function checkValue(o: OptionDecl, text: string): OptionValue {
  const bad = (why: string) => new UsageError(`--${o.name}: ${why}`);
  if (o.type === 'int' || o.type === 'number') {
    const v = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(v) || (o.type === 'int' && !Number.isInteger(v))) throw bad(`must be ${rangeText(o)}, got "${text}"`);
    if ((o.min !== undefined && (o.minExclusive ? v <= o.min : v < o.min)) || (o.max !== undefined && v > o.max)) throw bad(`must be ${rangeText(o)}, got ${text}`);
    const msg = o.check?.(text);
    if (msg) throw bad(msg);
    return v;
  }
  if (o.type === 'enum' && !o.choices!.includes(text)) throw bad(`must be one of ${o.choices!.join(', ')}, got "${text}"`);
  if (text === '') throw bad('needs a non-empty value');
  const msg = o.check?.(text);
  if (msg) throw bad(msg);
  return text;
}

/** Parses argv (the arguments after the command name) against a declaration. */
export function parseCommand(cmd: CommandDecl, argv: string[]): Parsed {
  const opts = allOptions(cmd);
  const byName = new Map(opts.map((o) => [o.name, o]));
  const values: Parsed['values'] = {};
  const given = new Set<string>();
  const positionals: string[] = [];
  // --help anywhere wins, before any other check: `sgilo theory --help` never starts a run.
  if (argv.includes('--help') || argv.includes('-h')) return { command: cmd.name, positionals, values, given, help: true, verbose: false, force: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-' || /^-\d/.test(a)) {
      positionals.push(a);
      continue;
    }
    if (!a.startsWith('--')) throw new UsageError(`unknown option "${a}" (options are written --name)`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const o = byName.get(name);
    if (!o) throw new UsageError(`unknown option --${name}${suggest(name, opts)}`);
    if (o.type === 'flag') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value, got "${a.slice(eq + 1)}"`);
      values[name] = true;
      given.add(name);
      continue;
    }
    let text: string;
    if (eq >= 0) text = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`--${name} needs a value (${allowed(o)})`);
      text = next;
      i++;
    }
    if (o.type === 'list') {
      checkValue(o, text);
      values[name] = [...((values[name] as string[] | undefined) ?? []), text];
    } else {
      if (given.has(name)) throw new UsageError(`--${name} is given twice`);
      values[name] = checkValue(o, text);
    }
    given.add(name);
  }
  for (const o of opts) {
    if (values[o.name] !== undefined) continue;
    values[o.name] = o.type === 'flag' ? false : o.type === 'list' ? [] : o.default === undefined ? undefined : o.type === 'int' || o.type === 'number' ? Number(o.default) : o.default;
  }
  const decls = cmd.positionals ?? [];
  const rest = decls.find((p) => p.rest);
  const required = decls.filter((p) => !p.optional).length;
  if (positionals.length < required) throw new UsageError(`missing ${decls.slice(positionals.length).filter((p) => !p.optional).map((p) => `<${p.name}>`).join(' ')} (usage: ${usageLine(cmd)})`);
  if (!rest && positionals.length > decls.length) throw new UsageError(`unexpected argument "${positionals[decls.length]}" (usage: ${usageLine(cmd)})`);
  decls.forEach((p, i) => {
    const v = positionals[i];
    if (v !== undefined && p.choices && !p.choices.includes(v)) throw new UsageError(`<${p.name}> must be one of ${p.choices.join(', ')}, got "${v}"`);
  });
  const parsed: Parsed = { command: cmd.name, positionals, values, given, help: false, verbose: values.verbose === true, force: values.force === true };
  const conflict = cmd.conflicts?.(parsed);
  if (conflict) throw new UsageError(conflict);
  return parsed;
}

function suggest(name: string, opts: OptionDecl[]): string {
  const near = opts.map((o) => o.name).filter((n) => distance(n, name) <= 2);
  return near.length ? `; did you mean ${near.map((n) => `--${n}`).join(' or ')}?` : '';
}

/** Levenshtein distance (for "did you mean"). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

export function usageLine(cmd: CommandDecl): string {
  const pos = (cmd.positionals ?? []).map((p) => (p.optional ? `[${p.name}${p.rest ? '...' : ''}]` : `<${p.name}>${p.rest ? '...' : ''}`));
  return ['sgilo', cmd.name, ...pos, '[options]'].join(' ');
}

/** `sgilo <cmd> --help`: usage, positionals, every option with default and range, examples. */
export function formatHelp(cmd: CommandDecl): string {
  const lines = [`usage: ${usageLine(cmd)}`, '', cmd.summary, ''];
  for (const p of cmd.positionals ?? []) lines.push(`  <${p.name}>`.padEnd(26) + p.help + (p.choices ? ` (${p.choices.join(', ')})` : ''));
  if (cmd.positionals?.length) lines.push('');
  lines.push('options:');
  for (const o of allOptions(cmd)) {
    const head = `  --${o.name}${o.type === 'flag' ? '' : ` ${o.type === 'enum' ? o.choices!.join('|') : (o.value ?? (o.type === 'int' || o.type === 'number' ? 'N' : 'X'))}`}`;
    const extra: string[] = [];
    if (o.type === 'int' || o.type === 'number') extra.push(allowed(o));
    if (o.type === 'list') extra.push('repeatable');
    if (o.default !== undefined && o.type !== 'flag') extra.push(`default ${o.default}`);
    const text = o.help + (extra.length ? ` (${extra.join('; ')})` : '');
    lines.push(head.length < 26 ? head.padEnd(26) + text : `${head}\n${' '.repeat(26)}${text}`);
  }
  if (cmd.notes) lines.push('', cmd.notes);
  lines.push('', 'example:', ...cmd.examples.map((e) => `  sgilo ${e}`));
  return lines.join('\n');
}
