import { describe, expect, it } from 'vitest';
import { REDACTED, redactConfig } from '../../../src/admin/config-redaction.js';
import { loadConfig } from '../../../src/config/load.js';

describe('redactConfig', () => {
  it('hides the options marked sensitive and shows the rest', () => {
    const config = loadConfig({
      env: {},
      overrides: {
        admin: { token: 'admin-secret-token' },
        kafka: {
          sasl: {
            mechanism: 'plain',
            username: 'bridge',
            password: 'kafka-secret-password',
            passwordFile: '',
            oauthTokenFile: '',
          },
        },
        schemaRegistry: { url: 'https://reg:registry-url-secret@registry:8081', password: 'p' },
      },
    });
    const shown = redactConfig(config);
    const text = JSON.stringify(shown);
    expect(text).not.toContain('admin-secret-token');
    expect(text).not.toContain('kafka-secret-password');
    expect(text).not.toContain('registry-url-secret');
    expect(shown.admin).toEqual({ token: REDACTED, tokenFile: '' });
    expect(shown.kafka).toMatchObject({
      brokers: config.kafka.brokers,
      sasl: { mechanism: 'plain', username: 'bridge', password: REDACTED, passwordFile: '' },
    });
    expect(shown.schemaRegistry).toMatchObject({
      url: `https://reg:${REDACTED}@registry:8081`,
      password: REDACTED,
    });
    expect(shown.mqtt).toEqual(config.mqtt);
    // the input is not changed
    expect(config.admin.token).toBe('admin-secret-token');
  });

  it('hides values named like secrets even when the schema does not mark them', () => {
    const shown = redactConfig(
      {
        plugin: { apiToken: 't', clientSecret: 's', dbPassword: 'p', passwordFile: '/run/pw' },
        secrets: { anything: 'x' },
        unset: { token: '' },
      },
      {},
    );
    expect(shown).toEqual({
      plugin: {
        apiToken: REDACTED,
        clientSecret: REDACTED,
        dbPassword: REDACTED,
        // a path to a secret is no secret, and says where it was read
        passwordFile: '/run/pw',
      },
      secrets: { anything: REDACTED },
      unset: { token: '' },
    });
  });
});
