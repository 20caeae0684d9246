// The README's command list, generated from the declarations (cli/commands.ts), so the README can
// never list a flag that does not exist or miss one that does. `node --import
// ./scripts/register-ts.mjs cli/command_list.ts` prints it; test/cli_args.test.ts checks that
// README.md holds exactly this text between its `commands` markers.

import { allOptions, usageLine } from './args.ts';
import { COMMANDS } from './commands.ts';

export const BEGIN = '<!-- commands: generated from cli/commands.ts by cli/command_list.ts; do not edit by hand -->';
export const END = '<!-- commands end -->';

export function commandsMarkdown(): string {
  const lines: string[] = [BEGIN, ''];
  for (const c of COMMANDS) {
    lines.push(`- \`${usageLine(c)}\`: ${c.summary}`);
    const opts = allOptions(c).filter((o) => o.name !== 'help' && o.name !== 'verbose');
    if (opts.length) {
      const fmt = opts.map((o) => `\`--${o.name}${o.type === 'flag' ? '' : ` ${o.type === 'enum' ? o.choices!.join('|') : (o.value ?? 'X')}`}\`${o.default !== undefined && o.type !== 'flag' ? ` (${o.default})` : ''}`);
      lines.push(`  Options: ${fmt.join(', ')}.`);
    }
    lines.push(`  Example: \`sgilo ${c.examples[0]}\``);
  }
  lines.push('', 'Every command also takes `--help` (usage, options with ranges and defaults, an example) and `--verbose`.', '', END);
  return lines.join('\n');
}

const self = (globalThis as { process?: { argv?: string[] } }).process?.argv?.[1] ?? '';
if (self.endsWith('command_list.ts')) console.log(commandsMarkdown());
