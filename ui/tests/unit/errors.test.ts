import { describe, expect, test } from 'vitest';
import { COMMANDS, isAppError, type ErrorCode } from '../../src/ipc';
import { friendlyError, sentence } from '../../src/lib/errors';

const CODES: ErrorCode[] = [
  'gated',
  'not_found',
  'network',
  'disk_full',
  'cancelled',
  'incompatible_pair',
  'no_model_loaded',
  'needs_draft',
  'busy',
  'out_of_memory',
  'unsupported_model',
  'invalid_request',
  'io',
  'internal',
];

describe('friendly errors', () => {
  test('every error code has a plain sentence and a fix', () => {
    for (const code of CODES) {
      const f = friendlyError({ code, message: 'technical detail' });
      expect(f.code).toBe(code);
      expect(f.message).toMatch(/^[A-Z].*[.!]$/);
      expect(f.fix.length).toBeGreaterThan(10);
      expect(f.detail).toBe('technical detail');
    }
  });
  test('gated models say how to get access', () => {
    const f = friendlyError({ code: 'gated', message: 'HTTP 403' });
    expect(f.message).toContain('gated');
    expect(f.fix).toContain('access token');
  });
  test('invalid requests keep their own wording as a sentence', () => {
    expect(friendlyError({ code: 'invalid_request', message: 'the prompt is empty' }).message).toBe('The prompt is empty.');
  });
  test('unknown shapes become internal errors with their text kept', () => {
    expect(friendlyError(new Error('boom'))).toMatchObject({ code: 'internal', detail: 'boom' });
    expect(friendlyError('plain string')).toMatchObject({ code: 'internal', detail: 'plain string' });
    expect(friendlyError({ code: 'nonsense', message: 'x' }).code).toBe('internal');
  });
  test('helpers', () => {
    expect(sentence('hello')).toBe('Hello.');
    expect(sentence('Done!')).toBe('Done!');
    expect(isAppError({ code: 'io', message: 'x' })).toBe(true);
    expect(isAppError('x')).toBe(false);
    expect(new Set(COMMANDS).size).toBe(COMMANDS.length);
  });
});
