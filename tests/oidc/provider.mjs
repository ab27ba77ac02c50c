// A real OpenID Connect provider (the certified `oidc-provider` package) for Concord's single
// sign-on tests. It serves one static confidential client on a loopback port and prints one JSON
// line on stdout once it listens: {"issuer": "http://127.0.0.1:PORT"}.
//
//   node provider.mjs --port 0 --accounts accounts.json --client-id concord --client-secret S \
//     --redirect-uri http://127.0.0.1:8080/auth/oidc/test/callback \
//     --backchannel-logout-uri http://127.0.0.1:8080/auth/oidc/test/backchannel-logout \
//     --post-logout-redirect-uri http://127.0.0.1:8080/
//
// Any login name is accepted by the development login form. The claims of an account (email,
// email_verified, name, groups) are read from the accounts file at every request, so a test can
// rewrite it between two sign-ins; an account missing from the file gets an email equal to its
// login name and no groups. GET /test/requests counts the requests made so far, by path.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    accounts: { type: 'string' },
    'client-id': { type: 'string', default: 'concord' },
    'client-secret': { type: 'string', default: 'concord-test-secret' },
    'redirect-uri': { type: 'string' },
    'backchannel-logout-uri': { type: 'string' },
    'post-logout-redirect-uri': { type: 'string' },
  },
});
for (const required of ['accounts', 'redirect-uri', 'backchannel-logout-uri', 'post-logout-redirect-uri']) {
  if (!args[required]) {
    console.error(`provider.mjs: --${required} is required`);
    process.exit(2);
  }
}

function claimsOf(login) {
  let accounts = {};
  try {
    accounts = JSON.parse(readFileSync(args.accounts, 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const stored = accounts[login] ?? {};
  return {
    email: stored.email ?? login,
    email_verified: stored.email_verified ?? true,
    name: stored.name ?? login,
    groups: stored.groups ?? [],
  };
}

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const server = createServer();
await new Promise((resolve) => server.listen(Number(args.port), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: [args['redirect-uri']],
    post_logout_redirect_uris: [args['post-logout-redirect-uri']],
    backchannel_logout_uri: args['backchannel-logout-uri'],
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...signingKey, kid: 'test-signing-key', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['concord-test-cookie-key'] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { methods: ['S256'], required: () => true },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, ...claimsOf(sub) };
      },
    };
  },
});
provider.on('backchannel.error', (_ctx, err) => console.error('backchannel logout failed:', err.message));
provider.on('server_error', (_ctx, err) => console.error('server error:', err));

// How many times each path was requested, at GET /test/requests (JSON), so a test can see how
// often Concord fetched the discovery document and the keys.
const requests = {};
const handle = provider.callback();
server.on('request', (req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (req.method === 'GET' && path === '/test/requests') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(requests));
    return;
  }
  requests[path] = (requests[path] ?? 0) + 1;
  handle(req, res);
});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
