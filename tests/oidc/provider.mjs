// A real OpenID Provider (node-oidc-provider) for the single sign-on tests, on loopback.
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: {"client": {"client_id", "client_secret", "redirect_uris": [...]},
//               "users": {"<login>": {"email", "email_verified", "name", "groups": [...]}}}
// The users are read again at every sign-in, so a test can change someone's groups between
// two sign-ins. The provider's built-in development login and consent pages are used (any
// login that names a user in the file signs in; they are driven with plain HTTP requests).
// It listens on a free port and prints "listening <issuer>" once it is ready.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
const read = () => JSON.parse(readFileSync(configPath, 'utf8'));

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const { client } = read();
  const provider = new Provider(issuer, {
    clients: [{
      ...client,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    // Put the requested claims in the ID token itself (as most council IdPs do for groups).
    conformIdTokenClaims: false,
    cookies: { keys: ['test-only-cookie-key-not-secret'] },
    async findAccount(_ctx, id) {
      const user = read().users[id];
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() { return { sub: id, ...user }; },
      };
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
