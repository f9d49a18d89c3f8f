#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { main } from '../dist/cli.js';

// The version lives in the package.json beside this folder, installed or not.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
process.exit(await main(process.argv.slice(2), { version }));
