#!/usr/bin/env node
// The package's `bin`: registers the TypeScript loader, then runs the CLI written in TypeScript.
import { register } from 'node:module';
register('../scripts/ts-hooks.mjs', import.meta.url);
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
