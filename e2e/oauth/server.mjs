// The OAuth 2.0 server the e2e suite connects accounts against:
// oauth2-mock-server (third-party, npm), made as strict as a real provider
// where the mock is lenient, through its own event hooks:
//  - an authorization code is used once, by the client and redirect_uri it
//    was issued for, and only with a PKCE code_verifier (the mock itself
//    checks the verifier against the S256 challenge);
//  - a refresh token is used once: each refresh returns a new one and the
//    old one is dead (rotation); an unknown, used or revoked one gets
//    400 invalid_grant, as RFC 6749 §5.2 says;
//  - access tokens live `ttl` seconds (expires_in).
// Its ID tokens carry an OpenAI-style account claim, for request headers.
//
// Prints `oauth-server listening on URL control URL`. The control port
// (test-only): GET /state, POST /ttl {"secs"}, POST /revoke-refresh-tokens.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');

const state = {
  ttl: 3600,
  codes: new Map(), // code -> { client_id, redirect_uri }
  liveRefresh: new Set(),
  issuedRefresh: [], // every refresh token ever issued
  issuedAccess: [],
  log: [], // { grant_type, ok, at, error }
};

server.service.on('beforeAuthorizeRedirect', (redirect, req) => {
  const code = redirect.url.searchParams.get('code');
  if (code) {
    state.codes.set(code, {
      client_id: String(req.query.client_id ?? ''),
      redirect_uri: String(req.query.redirect_uri ?? ''),
      pkce: Boolean(req.query.code_challenge),
    });
  }
});

server.service.on('beforeTokenSigning', (token) => {
  token.payload['https://api.openai.com/auth'] = { chatgpt_account_id: 'acct-e2e-42' };
  // Every token is new, as a real provider's are (the mock's would repeat
  // within one second: same claims, same iat).
  token.payload.jti = randomUUID();
});

function refuse(response, error, description) {
  response.statusCode = 400;
  response.body = { error, error_description: description };
}

server.service.on('beforeResponse', (response, req) => {
  const body = req.body ?? {};
  const grant = body.grant_type;
  if (grant === 'authorization_code') {
    const issued = state.codes.get(body.code);
    state.codes.delete(body.code);
    if (!issued) refuse(response, 'invalid_grant', 'unknown or used authorization code');
    else if (issued.client_id !== body.client_id) refuse(response, 'invalid_grant', 'code issued to another client');
    else if (issued.redirect_uri !== body.redirect_uri) refuse(response, 'invalid_grant', 'redirect_uri differs');
    else if (!issued.pkce || !body.code_verifier) refuse(response, 'invalid_request', 'PKCE is required');
  } else if (grant === 'refresh_token') {
    if (!state.liveRefresh.has(body.refresh_token)) {
      refuse(response, 'invalid_grant', 'refresh token is invalid, used or revoked');
    } else {
      state.liveRefresh.delete(body.refresh_token);
    }
  }
  const ok = response.statusCode === 200;
  if (ok) {
    response.body.expires_in = state.ttl;
    if (response.body.refresh_token) {
      state.liveRefresh.add(response.body.refresh_token);
      state.issuedRefresh.push(response.body.refresh_token);
    }
    state.issuedAccess.push(response.body.access_token);
  }
  state.log.push({ grant_type: grant, ok, at: Date.now(), error: ok ? '' : response.body.error });
});

await server.start(0, '127.0.0.1');
const url = server.issuer.url;

function readJson(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => {
      try { resolve(data ? JSON.parse(data) : {}); } catch { resolve({}); }
    });
  });
}

const control = http.createServer(async (req, res) => {
  const send = (code, obj) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
  };
  if (req.method === 'GET' && req.url === '/state') {
    return send(200, {
      ttl: state.ttl,
      live_refresh: [...state.liveRefresh],
      issued_refresh: state.issuedRefresh,
      issued_access: state.issuedAccess,
      log: state.log,
    });
  }
  if (req.method === 'POST' && req.url === '/ttl') {
    const b = await readJson(req);
    state.ttl = Number(b.secs) || 3600;
    return send(200, { ttl: state.ttl });
  }
  if (req.method === 'POST' && req.url === '/revoke-refresh-tokens') {
    const n = state.liveRefresh.size;
    state.liveRefresh.clear();
    return send(200, { revoked: n });
  }
  send(404, { error: 'not found' });
});
control.listen(0, '127.0.0.1', () => {
  const { port } = control.address();
  console.log(`oauth-server listening on ${url} control http://127.0.0.1:${port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    control.close();
    await server.stop();
    process.exit(0);
  });
}
