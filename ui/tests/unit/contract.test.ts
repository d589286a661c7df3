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

  test('the greedy verdicts are the ones the Rust side sends', () => {
    const ipcTs = readFileSync(resolve(here, '../../src/ipc.ts'), 'utf8');
    const ipcRs = readFileSync(resolve(srcTauri, 'ipc.rs'), 'utf8');
    const tsLine = ipcTs.match(/export type GreedyVerdict = ([^;]+);/);
    expect(tsLine, 'ipc.ts has a GreedyVerdict type').not.toBeNull();
    const ts = [...tsLine![1].matchAll(/'(\w+)'/g)].map((m) => m[1]);
    const body = ipcRs.match(/pub enum GreedyVerdict \{([^}]*)\}/);
    expect(body, 'ipc.rs has a GreedyVerdict enum').not.toBeNull();
    const rust = [...body![1].matchAll(/^\s*([A-Z]\w*),/gm)].map((m) => m[1].replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase());
    expect(ts.sort()).toEqual(rust.sort());
    expect(ts).toContain('incomplete');
  });

  test('the app error codes are the ones the UI words', () => {
    const ipc = readFileSync(resolve(here, '../../src/ipc.ts'), 'utf8');
    const errors = readFileSync(resolve(srcTauri, 'error.rs'), 'utf8');
    const uiCodes = new Set([...ipc.slice(ipc.indexOf('export type ErrorCode')).matchAll(/\| '(\w+)'/g)].map((m) => m[1]));
    const rustCodes = new Set([...errors.matchAll(/=> "(\w+)"/g), ...errors.matchAll(/new\("(\w+)"/g)].map((m) => m[1]));
    for (const code of rustCodes) expect(uiCodes.has(code), `Rust error code ${code} has no sentence in the UI`).toBe(true);
  });
});
