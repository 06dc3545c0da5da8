// A real OpenID Connect provider for the runtime's SSO tests: panva's `oidc-provider` (the
// certified Node.js implementation), on loopback, with one confidential client that must use
// PKCE and three people whose `groups` claim the runtime maps to roles.
//
//   node provider.mjs <port> <redirect_uri>
//
// Prints `oidc-provider listening on <issuer>` when it serves. The login page is a plain form
// (`login` = the person's name, no password: the provider's own authentication is not what is
// under test); consent is granted without asking, as for a first-party application.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [port, redirectUri] = process.argv.slice(2);
if (!port || !redirectUri) {
  console.error('usage: node provider.mjs <port> <redirect_uri>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const people = {
  ada: { name: 'Ada Lovelace', email: 'ada@example.org', groups: ['noc-admins', 'staff'] },
  bob: { name: 'Bob Operator', email: 'bob@example.org', groups: ['noc'] },
  eve: { name: 'Eve Outsider', email: 'eve@example.org', groups: ['marketing'] },
  root: { name: 'Not The Local Admin', email: 'root@example.org', groups: ['noc-admins'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'opsconductor',
    client_secret: 'opsconductor-test-secret',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // Refuse any authorization request without a PKCE challenge: the runtime must send one.
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  async findAccount(_ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...person };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['opsconductor-test-cookie-key'] },
});

const page = (uid, error) => `<!doctype html><html><head><title>Test identity provider</title></head>
<body><h1>Test identity provider</h1>${error ? `<p id="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>User <input id="login" name="login" autofocus></label>
<button id="sign-in" type="submit">Sign in</button></form></body></html>`;

async function interaction(req, res) {
  const match = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html' }).end(page(match[1]));
    return;
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  const login = new URLSearchParams(body).get('login');
  if (!people[login]) {
    res.writeHead(400, { 'content-type': 'text/html' }).end(page(details.uid, `no user ${login}`));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: login } }, {
    mergeWithLastSubmission: false,
  });
}

const callback = provider.callback();
createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    });
  } else {
    callback(req, res);
  }
}).listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
