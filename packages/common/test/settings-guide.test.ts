import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { settingNames } from '../src/config.js';
import { envExample, guideDrift, settingsTable } from '../src/settings-guide.js';

/**
 * The settings are written in one place, the schema (with a line of the guide for each), and
 * everything that lists them is generated from it (`pnpm settings`) or checked against it here.
 */

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

describe('the settings', () => {
  it('each have a line in the guide, and the guide names no other', () => {
    expect(guideDrift()).toEqual({ missing: [], unknown: [] });
  });

  it('are listed in .env.example as generated, each with its default', () => {
    expect(read('.env.example')).toBe(envExample());
  });

  it('are listed in docs/configuration.md as generated', () => {
    expect(read('docs/configuration.md')).toContain(settingsTable());
  });

  it('each reach the services of the compose stack', () => {
    const compose = read('docker-compose.yml');
    const missing = settingNames().filter((name) => !new RegExp(`^\\s+${name}:`, 'm').test(compose));
    expect(missing).toEqual([]);
  });
});
