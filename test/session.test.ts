import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CacheConnectionError, CacheValidationError } from '../src/errors.js';
import { Session } from '../src/session.js';

const TOKEN = 'tok-SECRET-91be77';

describe('Session: stage and base URL', () => {
  it('defaults to stage prod and https://service.peak.ai', () => {
    const s = new Session({ env: {} });
    expect(s.stage).toBe('prod');
    expect(s.baseUrl).toBe('https://service.peak.ai');
  });

  it.each([
    ['prod', 'https://service.peak.ai'],
    ['latest', 'https://service.dev.peak.ai'],
    ['test', 'https://service.test.peak.ai'],
    ['beta-2', 'https://service.beta-2.peak.ai'],
  ])('stage %s -> %s', (stage, url) => {
    expect(new Session({ stage, env: {} }).baseUrl).toBe(url);
    expect(new Session({ env: { STAGE: stage } }).baseUrl).toBe(url);
  });

  // Python: peak.helpers.get_base_domain(stage, subdomain="press"), as Block.describe_deployment uses it.
  it.each([
    ['prod', 'https://press.peak.ai'],
    ['latest', 'https://press.dev.peak.ai'],
    ['test', 'https://press.test.peak.ai'],
    ['beta-2', 'https://press.beta-2.peak.ai'],
  ])('stage %s -> Press %s', (stage, url) => {
    expect(new Session({ stage, env: {} }).pressUrl).toBe(url);
    expect(new Session({ env: { STAGE: stage } }).pressUrl).toBe(url);
  });

  it('pressUrl option wins over PEAK_PRESS_URL, which wins over the stage; PEAK_PLATFORM_URL leaves it', () => {
    const env = { STAGE: 'test', PEAK_PRESS_URL: 'http://127.0.0.1:8081/', PEAK_PLATFORM_URL: 'http://x:1' };
    expect(new Session({ env }).pressUrl).toBe('http://127.0.0.1:8081');
    expect(new Session({ env, pressUrl: 'https://press.example/p/' }).pressUrl).toBe(
      'https://press.example/p',
    );
    expect(new Session({ env: { STAGE: 'test', PEAK_PLATFORM_URL: 'http://x:1' } }).pressUrl).toBe(
      'https://press.test.peak.ai',
    );
    expect(new Session({ env: { PEAK_PRESS_URL: '' } }).pressUrl).toBe('https://press.peak.ai');
    expect(() => new Session({ env: { PEAK_PRESS_URL: 'ftp://x' } })).toThrow(/env PEAK_PRESS_URL/);
    expect(() => new Session({ env: {}, pressUrl: 'https://u:p@x' })).toThrow(CacheValidationError);
  });

  it('baseUrl option wins over PEAK_PLATFORM_URL, which wins over the stage', () => {
    const env = { STAGE: 'test', PEAK_PLATFORM_URL: 'http://127.0.0.1:8080/' };
    expect(new Session({ env }).baseUrl).toBe('http://127.0.0.1:8080');
    expect(new Session({ env }).stage).toBe('test');
    expect(new Session({ env, baseUrl: 'https://proxy.example/peak/' }).baseUrl).toBe(
      'https://proxy.example/peak',
    );
  });

  it('stage option wins over STAGE; empty env values count as unset', () => {
    expect(new Session({ stage: 'latest', env: { STAGE: 'test' } }).stage).toBe('latest');
    const s = new Session({ env: { STAGE: '', PEAK_PLATFORM_URL: '', API_KEY: '' } });
    expect(s.stage).toBe('prod');
    expect(s.baseUrl).toBe('https://service.peak.ai');
    expect(s.hasAuthToken).toBe(false);
  });

  it('reads the environment once, at construction', () => {
    const env: Record<string, string | undefined> = { STAGE: 'test', API_KEY: TOKEN };
    const s = new Session({ env });
    env.STAGE = 'other';
    env.API_KEY = 'changed';
    expect(s.stage).toBe('test');
    expect(s.authorizationHeader()).toBe(TOKEN);
  });

  describe('defaults to process.env', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });
    it('reads API_KEY, STAGE and PEAK_PLATFORM_URL', () => {
      vi.stubEnv('API_KEY', TOKEN);
      vi.stubEnv('STAGE', 'test');
      vi.stubEnv('PEAK_PLATFORM_URL', '');
      const s = new Session();
      expect(s.authorizationHeader()).toBe(TOKEN);
      expect(s.baseUrl).toBe('https://service.test.peak.ai');
    });
  });
});

describe('Session: validation', () => {
  it.each(['a.b', 'a/b', 'evil.com#', '', ' prod'])('rejects stage option %j', (stage) => {
    expect(() => new Session({ stage, env: {} })).toThrow(CacheValidationError);
    expect(() => new Session({ stage, env: {} })).toThrow('option `stage`');
  });

  it('names env STAGE when it is invalid', () => {
    expect(() => new Session({ env: { STAGE: 'x.y' } })).toThrow(/env STAGE/);
  });

  it.each([
    'not a url',
    'ftp://example.com',
    'redis://example.com',
    'https://user:pw@example.com',
    'https://example.com/?q=1',
    '',
  ])('rejects baseUrl option %j', (baseUrl) => {
    expect(() => new Session({ baseUrl, env: {} })).toThrow(CacheValidationError);
    expect(() => new Session({ baseUrl, env: {} })).toThrow('option `baseUrl`');
  });

  it('does not echo credentials of a rejected baseUrl', () => {
    const err = (() => {
      try {
        new Session({ baseUrl: `https://user:${TOKEN}@example.com`, env: {} });
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a throw');
    })();
    expect(err.message).not.toContain(TOKEN);
  });

  it('names env PEAK_PLATFORM_URL when it is invalid', () => {
    expect(() => new Session({ env: { PEAK_PLATFORM_URL: 'file:///etc/passwd' } })).toThrow(
      /env PEAK_PLATFORM_URL/,
    );
  });

  it('rejects an empty authToken option', () => {
    expect(() => new Session({ authToken: '', env: { API_KEY: TOKEN } })).toThrow(CacheValidationError);
  });
});

describe('Session: the token', () => {
  it('comes from the option, else API_KEY', () => {
    expect(new Session({ authToken: TOKEN, env: { API_KEY: 'other' } }).authorizationHeader()).toBe(TOKEN);
    expect(new Session({ env: { API_KEY: TOKEN } }).authorizationHeader()).toBe(TOKEN);
  });

  it('missing: authorizationHeader() throws a CacheConnectionError saying how to configure it', () => {
    const s = new Session({ env: {} });
    expect(s.hasAuthToken).toBe(false);
    expect(() => s.authorizationHeader()).toThrow(CacheConnectionError);
    expect(() => s.authorizationHeader()).toThrow(
      'No Peak API token: pass `new Session({ authToken })` or set API_KEY',
    );
  });

  it('is redacted from util.inspect, JSON.stringify and enumeration', () => {
    const s = new Session({ authToken: TOKEN, stage: 'test', env: {} });
    const shown = inspect(s, { depth: 10, showHidden: true });
    expect(shown).toContain("authToken: '[redacted]'");
    expect(shown).toContain("stage: 'test'");
    expect(shown).not.toContain(TOKEN);
    expect(inspect({ nested: [s] }, { depth: 10 })).not.toContain(TOKEN);
    expect(JSON.parse(JSON.stringify(s))).toEqual({
      stage: 'test',
      baseUrl: 'https://service.test.peak.ai',
      pressUrl: 'https://press.test.peak.ai',
      authToken: '[redacted]',
    });
    expect(JSON.stringify({ s })).not.toContain(TOKEN);
    expect(Object.values(s)).not.toContain(TOKEN);
    expect(String(s)).not.toContain(TOKEN);
  });

  it('shows authToken undefined when absent', () => {
    const s = new Session({ env: {} });
    expect(inspect(s)).toContain('authToken: undefined');
    expect(s.toJSON()).toEqual({
      stage: 'prod',
      baseUrl: 'https://service.peak.ai',
      pressUrl: 'https://press.peak.ai',
      authToken: undefined,
    });
  });
});
