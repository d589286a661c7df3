// The IPC contract: the commands ipc.ts calls are exactly the ones the Tauri shell registers.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { COMMANDS } from '../../src/ipc';

const here = dirname(fileURLToPath(import.meta.url));
const srcTauri = resolve(here, '../../../src-tauri/src');

describe('IPC contract', () => {
  test('src-tauri registers every command of ipc.ts, and no other', () => {
    const main = readFileSync(resolve(srcTauri, 'main.rs'), 'utf8');
    const registered = [...main.matchAll(/commands::(\w+)/g)].map((m) => m[1]);
    expect([...registered].sort()).toEqual([...COMMANDS].sort());
  });

  test('each registered command is a #[tauri::command] in commands.rs', () => {
    const commands = readFileSync(resolve(srcTauri, 'commands.rs'), 'utf8');
    for (const name of COMMANDS) {
      expect(commands).toMatch(new RegExp(`#\\[tauri::command\\]\\s*pub (async )?fn ${name}\\(`));
    }
  });

  test('the app error codes are the ones the UI words', () => {
    const ipc = readFileSync(resolve(here, '../../src/ipc.ts'), 'utf8');
    const errors = readFileSync(resolve(srcTauri, 'error.rs'), 'utf8');
    const uiCodes = new Set([...ipc.slice(ipc.indexOf('export type ErrorCode')).matchAll(/\| '(\w+)'/g)].map((m) => m[1]));
    const rustCodes = new Set([...errors.matchAll(/=> "(\w+)"/g), ...errors.matchAll(/new\("(\w+)"/g)].map((m) => m[1]));
    for (const code of rustCodes) expect(uiCodes.has(code), `Rust error code ${code} has no sentence in the UI`).toBe(true);
  });
});
